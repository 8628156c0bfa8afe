"""SQLite writers take turns: a second writer waits for the first to finish, then writes; readers never wait.

Every kind of write takes the turn, whatever its first word, and takes it again when its statement comes from
sqlite3's statement cache (which the connections keep); the queue is opt-in (SQLITE_WRITER_LOCK), and an app on
a system without fcntl starts and writes without it.
"""
from __future__ import annotations

import fcntl
import gc
import os
import random
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


def _connect(path, timeout=30, **options):
    connection = sqlite3.connect(str(path), timeout=timeout, factory=Connection, check_same_thread=False, **options)
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
        except Exception as exc:  # noqa: BLE001 -- handed to the test
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


def _prepared(connection) -> list[tuple]:
    """The authorizer's calls from now on, but for sqlite3's own BEGIN: empty while statements come from the cache.

    Setting an authorizer expires every statement the connection prepared: call this before the first one."""
    calls = []

    def authorize(*call):
        if call[0] != sqlite3.SQLITE_TRANSACTION:
            calls.append(call)
        return connection._turn.authorize(*call)

    connection.set_authorizer(authorize)
    return calls


def _a_second_writer_waits_for(holder, database) -> None:
    """Proof that `holder` has the turn: another connection's write queues until `holder` commits."""
    other = _connect(database)
    done, outcome = _in_thread(lambda: other.execute("INSERT OR REPLACE INTO stock VALUES ('Z', 1)"))
    _until(lambda: _queued(other), "the second writer queued for the turn")
    assert not done.is_set(), "the second writer went ahead while the first still had its turn"
    holder.commit()
    assert done.wait(10) and "error" not in outcome
    other.commit()
    other.close()


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


# Each write, run a second time (n = 2), is the same SQL text: the second run comes from sqlite3's cache.
WRITES = {
    "WITH … INSERT": lambda c, n: c.execute(
        "WITH new(code) AS (SELECT ?) INSERT INTO stock SELECT code, 5 FROM new", (f"B{n}",)),
    "INSERT … RETURNING": lambda c, n: c.execute("INSERT INTO stock VALUES (?, 5) RETURNING code", (f"B{n}",)).fetchall(),
    "UPDATE … RETURNING": lambda c, n: c.execute(
        "UPDATE stock SET quantity = 5 WHERE code = 'A' RETURNING code").fetchall(),
    "upsert": lambda c, n: c.execute(
        "INSERT INTO stock VALUES ('A', 5) ON CONFLICT (code) DO UPDATE SET quantity = excluded.quantity"),
    "REPLACE": lambda c, n: c.execute("REPLACE INTO stock VALUES (?, 5)", (f"B{n}",)),
    "executemany": lambda c, n: c.executemany("INSERT INTO stock VALUES (?, 5)", [(f"B{n}",), (f"C{n}",)]),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_every_kind_of_write_takes_the_turn_until_commit(database, write):
    first, second = _connect(database), _connect(database)
    # Python 3.11's sqlite3 opens a transaction itself only before INSERT/UPDATE/DELETE/REPLACE; a
    # WITH … INSERT would run in autocommit mode and be over (its turn given back) at once.
    first.execute("BEGIN")
    assert not _turn_is_held(database)  # BEGIN alone writes nothing
    write(first, 1)
    assert _turn_is_held(database)

    done, outcome = _in_thread(lambda: second.execute("INSERT INTO stock VALUES ('Z', 1)"))
    _until(lambda: _queued(second), "the second writer queued for the turn")
    assert not done.is_set()
    first.commit()
    assert done.wait(10) and "error" not in outcome
    second.commit()
    assert not _turn_is_held(database)
    assert first.execute("SELECT count(*) FROM stock WHERE quantity = 5").fetchone()[0] >= 1


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_every_kind_of_write_takes_the_turn_again_when_its_statement_comes_from_the_cache(database, write):
    first = _connect(database)
    prepared = _prepared(first)
    write(first, 1)
    first.commit()
    assert prepared != []
    first.execute("BEGIN")
    prepared.clear()  # or a WITH … INSERT would run in autocommit mode (see above)
    write(first, 2)
    assert prepared == [], "the statement was prepared again: the cache was not used"
    assert _turn_is_held(database)
    _a_second_writer_waits_for(first, database)
    assert not _turn_is_held(database)


def test_a_write_run_a_200th_time_among_hundreds_of_other_statements_still_takes_the_turn(database):
    writer = _connect(database)
    prepared = _prepared(writer)
    write = "UPDATE stock SET quantity = quantity + 1 WHERE code = 'A'"
    for run in range(1, 201):
        prepared.clear()
        writer.execute(write)
        assert _turn_is_held(database)
        if run in (2, 200):
            assert prepared == [], "the write was prepared again: the cache was not used"
            _a_second_writer_waits_for(writer, database)
        else:
            writer.commit()
        # Three texts never seen before each time, readers and writers (600 in all): both the connection's
        # memory of its writers and sqlite3's cache drop texts all along, never the write run each time.
        writer.execute(f"SELECT quantity + {run} FROM stock").fetchall()
        writer.execute(f"UPDATE stock SET quantity = quantity WHERE code = 'Z{run}'")
        writer.commit()
        writer.execute(f"SELECT {run}").fetchall()
    # Once more after 300 other writers: long dropped from sqlite3's cache, so prepared, so seen.
    for other in range(300):
        writer.execute(f"DELETE FROM stock WHERE code = 'Y{other}'")
        writer.commit()
    prepared.clear()
    writer.execute(write)
    assert prepared != []
    _a_second_writer_waits_for(writer, database)
    assert writer.execute("SELECT quantity FROM stock WHERE code = 'A'").fetchone() == (202,)


def test_with_a_small_cache_every_write_takes_the_turn_and_no_read_does(database):
    # Random runs of a dozen texts through a 3-statement cache: writers come from it, fall out of it and come back,
    # and more of them than the connection remembers (twice the cache) take turns: its memory must be an LRU too.
    connection = _connect(database, cached_statements=3)
    prepared = _prepared(connection)
    writes = [f"UPDATE stock SET quantity = quantity + {i} WHERE code = 'A'" for i in range(8)]
    reads = [f"SELECT quantity + {i} FROM stock" for i in range(4)]
    draw = random.Random(2026)
    from_cache = 0
    for _ in range(2000):
        # One write runs every other time or so: it stays in sqlite3's cache while the others come and go.
        statement = writes[0] if draw.random() < 0.5 else draw.choice(writes[1:] + reads)
        prepared.clear()
        connection.execute(statement).fetchall()
        if statement in writes:
            assert _turn_is_held(database), statement
            from_cache += not prepared
            connection.commit()
        else:
            assert not connection._turn.asked, statement
    assert from_cache > 100  # the case under test did happen, often


def test_a_read_run_again_comes_from_the_cache_and_never_takes_the_turn(database):
    reader = _connect(database)
    prepared = _prepared(reader)
    reader.execute("BEGIN")
    for run in (1, 2):
        prepared.clear()
        assert reader.execute("SELECT quantity FROM stock WHERE code = ?", ("A",)).fetchall() == [(1,)]
        assert (prepared == []) == (run == 2)  # prepared the first time only: sqlite3 keeps its cache
        assert not reader._turn.asked
        assert not _turn_is_held(database)
    reader.commit()


def test_a_write_made_by_a_trigger_takes_the_turn_when_its_statement_comes_from_the_cache(database):
    first = _connect(database)
    prepared = _prepared(first)
    # Only the trigger writes to the shared database: the statement itself writes to the connection's own.
    first.execute("CREATE TEMP TABLE inbox (code TEXT)")
    first.execute("CREATE TEMP TRIGGER file_it AFTER INSERT ON inbox BEGIN INSERT INTO stock VALUES (NEW.code, 1); END")
    assert not _turn_is_held(database)
    first.execute("INSERT INTO inbox VALUES (?)", ("B",))
    assert _turn_is_held(database)
    first.commit()
    prepared.clear()
    first.execute("INSERT INTO inbox VALUES (?)", ("C",))
    assert prepared == []
    assert _turn_is_held(database)
    _a_second_writer_waits_for(first, database)
    assert first.execute("SELECT count(*) FROM stock WHERE code IN ('B', 'C')").fetchone() == (2,)


def test_writes_to_the_temp_database_wait_for_nobody(database):
    connection = _connect(database)
    connection.execute("CREATE TEMP TABLE scratch (code TEXT)")
    for code in ("B", "C"):
        connection.execute("INSERT INTO scratch VALUES (?)", (code,))
        assert not connection._turn.asked
    connection.commit()


def test_a_statement_that_writes_after_a_schema_change_takes_the_turn(database):
    connection = _connect(database)
    prepared = _prepared(connection)
    insert = "INSERT INTO stock VALUES (?, 1)"
    # A temp table hides the shared one: the statement writes to the connection's own database only.
    connection.execute("CREATE TEMP TABLE stock (code TEXT, quantity INTEGER)")
    connection.execute(insert, ("T",))
    assert not connection._turn.asked
    connection.commit()
    connection.execute("DROP TABLE temp.stock")
    connection.commit()
    # The same cached statement now writes to the shared table: SQLite prepares it again (the schema changed),
    # and the authorizer sees it then …
    connection.execute(insert, ("B",))
    assert _turn_is_held(database)
    connection.commit()
    # … so that it is known as a writer when it next runs from the cache.
    prepared.clear()
    connection.execute(insert, ("C",))
    assert prepared == []
    _a_second_writer_waits_for(connection, database)
    assert connection.execute("SELECT count(*) FROM stock WHERE code IN ('B', 'C')").fetchone() == (2,)


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
        # SQLAlchemy's statements come from sqlite3's cache the second time, and a cached write takes the turn.
        prepared = _prepared(connection)
        for code in ("A", "B"):
            prepared.clear()
            db.session.execute(text("INSERT INTO stock VALUES (:code)"), {"code": code})
            assert _turn_is_held(tmp_path / "shop.db")
            assert (prepared == []) == (code == "B")
            db.session.commit()
            assert not _turn_is_held(tmp_path / "shop.db")
        assert db.session.execute(text("SELECT count(*) FROM stock")).scalar_one() == 2
        prepared.clear()
        assert db.session.execute(text("SELECT count(*) FROM stock")).scalar_one() == 2
        assert prepared == []  # the second run's statement came from the cache
        db.session.commit()
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
