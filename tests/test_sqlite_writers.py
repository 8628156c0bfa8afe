"""SQLite writers take turns: a second writer waits for the first to finish, then writes; readers never wait.

Every kind of write takes the turn, whatever its first word; the queue is opt-in (SQLITE_WRITER_LOCK), and an
app on a system without fcntl starts and writes without it.
"""
from __future__ import annotations

import fcntl
import gc
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from tatenpo.platform.sqlite_writers import Connection

ROOT = Path(__file__).resolve().parents[1]


def _connect(path, timeout=30):
    connection = sqlite3.connect(str(path), timeout=timeout, factory=Connection, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    return connection


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "shop.db"
    setup = _connect(path)
    setup.execute("CREATE TABLE stock (code TEXT PRIMARY KEY, quantity INTEGER)")
    setup.execute("INSERT INTO stock VALUES ('A', 1)")
    setup.commit()
    setup.close()
    return path


def _in_thread(work):
    done = threading.Event()
    outcome = {}

    def run():
        try:
            outcome["value"] = work()
        except Exception as exc:  # handed to the test
            outcome["error"] = exc
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done, outcome


def _turn_is_held(database) -> bool:
    """Whether some connection has the database's turn (the queue's file lock is taken)."""
    with open(str(database) + "-writers", "a+b") as queue:
        try:
            fcntl.flock(queue.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(queue.fileno(), fcntl.LOCK_UN)
        return False


def _until(condition, what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "never happened: " + what
        time.sleep(0.01)


def _queued(connection) -> bool:
    """The connection asked for the turn and has not got it yet."""
    return connection._turn.asked and connection._turn.fd is None


def test_a_second_writer_waits_for_the_first_to_commit_and_then_writes(database):
    first, second = _connect(database), _connect(database)
    first.execute("UPDATE stock SET quantity = 2 WHERE code = 'A'")  # the first write takes the turn

    done, outcome = _in_thread(lambda: second.execute("UPDATE stock SET quantity = quantity + 10 WHERE code = 'A'"))
    _until(lambda: _queued(second), "the second writer queued for the turn")
    assert not done.is_set(), "the second writer went ahead while the first still had its turn"
    first.commit()
    assert done.wait(10) and "error" not in outcome
    second.commit()
    # The second change was made on top of the first one, not beside it.
    assert first.execute("SELECT quantity FROM stock").fetchone() == (12,)


WRITES = {
    "WITH … INSERT": lambda c: c.execute("WITH new(code) AS (SELECT 'B') INSERT INTO stock SELECT code, 5 FROM new"),
    "INSERT … RETURNING": lambda c: c.execute("INSERT INTO stock VALUES ('B', 5) RETURNING code").fetchall(),
    "UPDATE … RETURNING": lambda c: c.execute("UPDATE stock SET quantity = 5 WHERE code = 'A' RETURNING code").fetchall(),
    "executemany": lambda c: c.executemany("INSERT INTO stock VALUES (?, 5)", [("B",), ("C",)]),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_every_kind_of_write_takes_the_turn_until_commit(database, write):
    first, second = _connect(database), _connect(database)
    # Python 3.11's sqlite3 opens a transaction itself only before INSERT/UPDATE/DELETE/REPLACE; a
    # WITH … INSERT would run in autocommit mode and be over (its turn given back) at once.
    first.execute("BEGIN")
    assert not _turn_is_held(database)  # BEGIN alone writes nothing
    write(first)
    assert _turn_is_held(database)

    done, outcome = _in_thread(lambda: second.execute("INSERT INTO stock VALUES ('Z', 1)"))
    _until(lambda: _queued(second), "the second writer queued for the turn")
    assert not done.is_set()
    first.commit()
    assert done.wait(10) and "error" not in outcome
    second.commit()
    assert not _turn_is_held(database)
    assert first.execute("SELECT count(*) FROM stock WHERE quantity = 5").fetchone()[0] >= 1


def test_a_write_run_again_takes_the_turn_again(database):
    writer = _connect(database)
    for quantity in (2, 3):  # the same statement text: prepared anew, so seen anew
        writer.execute("UPDATE stock SET quantity = ? WHERE code = 'A'", (quantity,))
        assert _turn_is_held(database)
        writer.commit()
        assert not _turn_is_held(database)


def test_a_select_never_takes_the_turn(database):
    reader = _connect(database)
    reader.execute("BEGIN")
    rows = reader.execute("WITH wanted AS (SELECT 'A' AS code) SELECT quantity FROM stock JOIN wanted USING (code)")
    assert rows.fetchall() == [(1,)]
    assert not reader._turn.asked
    assert not _turn_is_held(database)
    reader.commit()


def test_a_write_in_autocommit_mode_gives_the_turn_back_at_once(database):
    writer = _connect(database)
    writer.execute("WITH new(code) AS (SELECT 'B') INSERT INTO stock SELECT code, 5 FROM new")
    assert not writer.in_transaction
    assert not _turn_is_held(database)


def test_a_rollback_ends_the_turn_too(database):
    first, second = _connect(database), _connect(database)
    first.execute("UPDATE stock SET quantity = 5")
    done, outcome = _in_thread(lambda: second.execute("UPDATE stock SET quantity = 7"))
    first.rollback()
    assert done.wait(10) and "error" not in outcome
    second.commit()
    assert first.execute("SELECT quantity FROM stock").fetchone() == (7,)


def test_readers_never_wait_for_a_writer(database):
    writer, reader = _connect(database), _connect(database)
    writer.execute("UPDATE stock SET quantity = 3")
    done, outcome = _in_thread(lambda: reader.execute("SELECT quantity FROM stock").fetchone())
    assert done.wait(10)
    assert outcome["value"] == (1,)  # the committed state, as WAL readers see it
    writer.commit()


def test_a_writer_that_keeps_its_turn_too_long_makes_the_other_fail_as_sqlite_would(database):
    holder, impatient = _connect(database), _connect(database, timeout=0.2)
    holder.execute("UPDATE stock SET quantity = 4")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        impatient.execute("UPDATE stock SET quantity = 9")
    impatient.rollback()
    holder.commit()
    impatient.execute("UPDATE stock SET quantity = 9")  # the turn is free again
    impatient.commit()
    assert holder.execute("SELECT quantity FROM stock").fetchone() == (9,)


def test_a_connection_dropped_mid_write_gives_its_turn_back(database):
    first = _connect(database)
    first.execute("UPDATE stock SET quantity = 3")  # takes the turn, and is never committed nor closed
    del first
    gc.collect()
    assert not _turn_is_held(database)
    second = _connect(database, timeout=1)
    second.execute("UPDATE stock SET quantity = 4")
    second.commit()
    assert second.execute("SELECT quantity FROM stock").fetchone() == (4,)


def _sqlite_app(redis_url, path, **config):
    # An app on SQLite whatever database the session tests (the PostgreSQL pass included).
    from tatenpo import create_app

    return create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite:///" + str(path),
                       "REDIS_URL": redis_url, "SECRET_KEY": "test-secret", **config})


def test_the_app_connections_take_turns_and_keep_their_pragmas(redis_url, tmp_path):
    from tatenpo.platform.extensions import db

    app = _sqlite_app(redis_url, tmp_path / "shop.db", SQLITE_WRITER_LOCK=True)
    with app.app_context():
        connection = db.session.connection().connection.dbapi_connection
        assert isinstance(connection, Connection)
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert connection.execute("PRAGMA foreign_keys").fetchone() == (1,)
        db.session.execute(text("CREATE TABLE stock (code TEXT PRIMARY KEY)"))
        db.session.commit()
        assert (tmp_path / "shop.db-writers").exists()
        db.session.remove()
        db.engine.dispose()


def test_with_the_option_off_writes_go_straight_to_sqlite(redis_url, tmp_path):
    from tatenpo.platform.extensions import db

    app = _sqlite_app(redis_url, tmp_path / "shop.db", SQLITE_WRITER_LOCK=False)
    with app.app_context():
        assert not isinstance(db.session.connection().connection.dbapi_connection, Connection)
        db.session.execute(text("CREATE TABLE stock (code TEXT PRIMARY KEY, quantity INTEGER)"))
        db.session.execute(text("INSERT INTO stock VALUES ('A', 1)"))
        db.session.commit()
        assert db.session.execute(text("SELECT quantity FROM stock")).scalar_one() == 1
        db.session.remove()
        db.engine.dispose()
    assert not (tmp_path / "shop.db-writers").exists()


def test_without_fcntl_the_app_starts_warns_and_writes_without_the_queue(redis_url, tmp_path):
    program = """
import sys
sys.modules["fcntl"] = None  # as on Windows
from sqlalchemy import text
from tatenpo import create_app
from tatenpo.platform.extensions import db

app = create_app({"SQLALCHEMY_DATABASE_URI": sys.argv[1], "REDIS_URL": sys.argv[2], "SECRET_KEY": "test-secret",
                  "SQLITE_WRITER_LOCK": True})
with app.app_context():
    db.session.execute(text("CREATE TABLE stock (code TEXT PRIMARY KEY, quantity INTEGER)"))
    db.session.execute(text("INSERT INTO stock VALUES ('A', 1)"))
    db.session.commit()
    print("quantity", db.session.execute(text("SELECT quantity FROM stock")).scalar_one())
"""
    env = dict(os.environ, TATENPO_INSTANCE=str(tmp_path / "instance"), PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-c", program, "sqlite:///" + str(tmp_path / "shop.db"), redis_url],
        check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "quantity 1" in result.stdout
    assert "SQLITE_WRITER_LOCK is on but this system has no fcntl" in result.stderr
    assert not (tmp_path / "shop.db-writers").exists()
