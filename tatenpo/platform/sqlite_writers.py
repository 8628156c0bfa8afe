"""Writers to one SQLite database take turns, woken the moment the database is free (opt-in: SQLITE_WRITER_LOCK).

SQLite lets one connection write at a time; the others wait in its busy handler, which sleeps 1, 2, 5, 10 …
up to 100 ms between tries, so the database sits idle while writers queue and the unlucky ones wait longest.

Here a connection waits for its turn before the first write of a transaction instead: an flock of a file
beside the database, which the kernel hands to the next waiter on release, across the web workers, the RQ
worker and the CLI alike (and gives back when a process dies). The turn ends with the transaction's commit or
rollback, or the connection's close. A connection waits for its turn at most its SQLite timeout; after that
SQLite's own waiting applies, as before. The file lock is only a queue in front of SQLite's lock: correctness
never depends on it.

Which statements write is SQLite's own answer, not a guess from the statement's text: an authorizer sees the
INSERT, UPDATE and DELETE actions of every statement while SQLite prepares it, so `WITH … INSERT`, `… RETURNING`,
REPLACE, upserts, DDL (it rewrites sqlite_master) and writes made by triggers all count, and a SELECT never does.
The turn is taken right there, before the statement runs. Two other ways were weighed: BEGIN IMMEDIATE for
every transaction would make readers queue behind writers too, which WAL exists to avoid; the statement's first
word misses every write that does not start with INSERT/UPDATE/DELETE/REPLACE. SQLite only consults the
authorizer when it prepares a statement, so these connections prepare every statement afresh
(cached_statements=0): a statement taken from sqlite3's cache would run unseen.

Python 3.11's sqlite3 (and so SQLAlchemy's pysqlite dialect, which leaves BEGIN to it) opens a transaction
itself only before a statement that starts with INSERT, UPDATE, DELETE or REPLACE; any other write, a
`WITH … INSERT` for one, outside an explicit transaction runs in autocommit mode. Such a write takes the turn
and gives it back as soon as it has run, since its transaction is then over.

The lock needs fcntl (POSIX). Elsewhere `connection_factory()` warns and returns None, and SQLite's busy
timeout alone orders the writers. Used through sqlite3.connect(..., factory=Connection) (see
tatenpo._sqlite_options).
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
import weakref

try:
    import fcntl
except ImportError:  # Windows: no flock, no queue
    fcntl = None

log = logging.getLogger(__name__)

AVAILABLE = fcntl is not None

# The authorizer's actions that change a table; DDL shows up as changes to sqlite_master.
_WRITES = frozenset((sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE))

# sqlite3.Connection's parameters after `database`, in order.
_PARAMETERS = ("timeout", "detect_types", "isolation_level", "check_same_thread", "factory", "cached_statements",
               "uri")


def connection_factory() -> type | None:
    """The factory for sqlite3.connect when the option is on, or None (with a warning) where flock is missing."""
    if AVAILABLE:
        return Connection
    log.warning("SQLITE_WRITER_LOCK is on but this system has no fcntl (POSIX file locks): SQLite writers "
                "are not queued and wait in SQLite's busy timeout instead")
    return None


class Turn:
    """One connection's place in the queue of writers of its database file."""

    def __init__(self, database: str, timeout: float) -> None:
        self.path = os.path.abspath(database) + "-writers"
        self.timeout = timeout
        self.asked = False  # for the transaction under way (whether or not the turn came in time)
        self.fd: int | None = None  # open (and locked) while this connection has its turn

    def authorize(self, action: int, _table, _column, database: str | None, _trigger) -> int:
        """sqlite3's authorizer: called while a statement is prepared, once per action it will take."""
        # The temp database is the connection's own: writing there waits for nobody.
        if action in _WRITES and database != "temp" and not self.asked:
            self.take()
        return sqlite3.SQLITE_OK

    def take(self) -> None:
        self.asked = True
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            # An exception here would fail the statement ("not authorized"); without the file, SQLite decides.
            log.warning("no SQLite writers' queue: cannot open %s (%s)", self.path, exc)
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fd = self._wait(fd)
        self.fd = fd
        if fd is not None:
            # A connection dropped mid-transaction (never committed, rolled back or closed) must not keep the
            # turn for the rest of its process's life: the descriptor is closed when the connection goes.
            self._release = weakref.finalize(self, os.close, fd)

    def _wait(self, fd: int) -> int | None:
        """Block on the lock in a helper thread, so that the wait can end after `timeout` (flock cannot)."""
        got = threading.Event()
        guard = threading.Lock()
        abandoned = False

        def block() -> None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with guard:
                if abandoned:
                    os.close(fd)  # closing the descriptor gives the lock back
                    return
            got.set()

        threading.Thread(target=block, name="sqlite-writer-turn", daemon=True).start()
        got.wait(self.timeout)
        with guard:
            if got.is_set():
                return fd
            abandoned = True
        return None  # waited as long as SQLite would have: write without a turn and let SQLite decide

    def give_back(self) -> None:
        self.asked = False
        if self.fd is not None:
            self.fd = None
            self._release()  # closes the descriptor (once), which gives the lock back


class Cursor(sqlite3.Cursor):
    # The turn is taken while a statement is prepared (Turn.authorize); here it is given back when due.
    def execute(self, statement, *args):
        try:
            return super().execute(statement, *args)
        finally:
            self.connection._after()

    def executemany(self, statement, *args):
        try:
            return super().executemany(statement, *args)
        finally:
            self.connection._after()

    def executescript(self, script):
        try:
            return super().executescript(script)
        finally:
            self.connection._after()


class Connection(sqlite3.Connection):
    """A sqlite3 connection that waits for its turn before writing (sqlite3.connect(..., factory=Connection))."""

    def __init__(self, database, *args, **kwargs) -> None:
        options = {**dict(zip(_PARAMETERS, args)), **kwargs}
        # The authorizer only runs when a statement is prepared: none may come from sqlite3's cache unseen.
        options["cached_statements"] = 0
        super().__init__(database, **options)
        name = os.fsdecode(database)
        # An in-memory database has no other writers; a URI is left to SQLite alone.
        plain_file = name not in ("", ":memory:") and not options.get("uri") and not name.startswith("file:")
        self._turn = Turn(name, options.get("timeout", 5.0)) if plain_file and AVAILABLE else None
        if self._turn is not None:
            self.set_authorizer(self._turn.authorize)  # the Turn, not the connection: no reference cycle

    def cursor(self, factory=Cursor):
        return super().cursor(factory)

    # sqlite3's own shortcuts make their cursor in C, past cursor() above.
    def execute(self, statement, *args):
        return self.cursor().execute(statement, *args)

    def executemany(self, statement, *args):
        return self.cursor().executemany(statement, *args)

    def executescript(self, script):
        return self.cursor().executescript(script)

    def _after(self) -> None:
        # The transaction is over (a commit, a rollback, a write in autocommit mode, a failed first write).
        if self._turn is not None and self._turn.asked and not self.in_transaction:
            self._turn.give_back()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._after()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._after()

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._turn is not None:
                self._turn.give_back()
