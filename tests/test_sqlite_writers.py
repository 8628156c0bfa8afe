"""SQLite writers take turns: a second writer waits for the first to finish, then writes; readers never wait."""
from __future__ import annotations

import fcntl
import gc
import sqlite3
import threading

import pytest

from tatenpo.platform.sqlite_writers import Connection


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


def test_a_second_writer_waits_for_the_first_to_commit_and_then_writes(database):
    first, second = _connect(database), _connect(database)
    first.execute("UPDATE stock SET quantity = 2 WHERE code = 'A'")  # the first write takes the turn

    done, outcome = _in_thread(lambda: second.execute("UPDATE stock SET quantity = quantity + 10 WHERE code = 'A'"))
    assert not done.wait(0.3), "the second writer went ahead while the first still had its turn"
    first.commit()
    assert done.wait(10) and "error" not in outcome
    second.commit()
    # The second change was made on top of the first one, not beside it.
    assert first.execute("SELECT quantity FROM stock").fetchone() == (12,)


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
    with open(str(database) + "-writers", "rb") as queue:
        fcntl.flock(queue.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError if the turn were still held
    second = _connect(database, timeout=1)
    second.execute("UPDATE stock SET quantity = 4")
    second.commit()
    assert second.execute("SELECT quantity FROM stock").fetchone() == (4,)


def test_the_app_connections_take_turns_and_keep_their_pragmas(redis_url, tmp_path):
    # An app on SQLite whatever database the session tests (the PostgreSQL pass included).
    from tatenpo import create_app
    from tatenpo.platform.extensions import db

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite:///" + str(tmp_path / "shop.db"),
                      "REDIS_URL": redis_url, "SECRET_KEY": "test-secret"})
    with app.app_context():
        connection = db.session.connection().connection.dbapi_connection
        assert isinstance(connection, Connection)
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert connection.execute("PRAGMA foreign_keys").fetchone() == (1,)
        db.session.remove()
        db.engine.dispose()
