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
word misses every write that does not start with INSERT/UPDATE/DELETE/REPLACE.

SQLite only consults the authorizer when it prepares a statement, and sqlite3 keeps the statements it prepared
in a cache (cached_statements, 128 by default) that runs them again unprepared. Preparing every statement afresh
instead (cached_statements=0) cost the stock page of a 100,000-product shop a tenth of its CPU (0.2–0.3 ms a
request, measured in-process): its SELECTs are long, and the authorizer is called for every column they read.
So the cache stays, and each connection remembers the SQL texts the authorizer saw write (`Writers`): executing
one of them takes the turn first, as its cached statement will run unseen. That memory must hold every writer
sqlite3's cache holds. In Python 3.11 the cache is functools.lru_cache(cached_statements) over the connection,
keyed by the SQL text and looked up once per execute()/executemany() (Modules/_sqlite/connection.c,
new_statement_cache; cursor.c, get_statement_from_cache). `Writers` is an LRU too, of twice that size, touched
at every execute()/executemany() of a text it holds and filled while a text is prepared. An LRU holds the texts
used last: a writer still in sqlite3's cache has had fewer than cached_statements other texts looked up since,
so fewer other writers touched in ours, and is still there. Ours is touched without sqlite3's being looked up
only by a call that fails before the lookup (a closed cursor or connection, another thread, executemany()
parameters that are not iterable), or filled by a write whose prepare then fails: the margin covers as many
distinct such errors, programming errors all. A text not remembered is prepared, so seen, on its next miss;
and the authorizer still takes the turn on every prepare, so remembering a writer only moves its turn earlier.
Schema changes need nothing more: SQLite prepares a cached statement again (authorizer and all) when the schema
changed under it, and a text that writes since (a temp table dropped that hid a main one) is remembered then. A
SELECT never becomes a writer, and a remembered writer whose writes all went to the temp database since only
takes a turn it did not need. executescript() never uses the cache: its statements are all prepared, so seen.

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
from collections import OrderedDict

try:
    import fcntl
except ImportError:  # Windows: no flock, no queue
    fcntl = None

log = logging.getLogger(__name__)

AVAILABLE = fcntl is not None

# The authorizer's actions that change a table; DDL shows up as changes to sqlite_master.
_WRITES = frozenset((sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE))

# sqlite3's statement cache when sqlite3.connect is not told (SQLAlchemy only passes it from the URL's query).
_CACHED_STATEMENTS = 128

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


class Writers:
    """The SQL texts seen writing, least recently executed first: every writer in sqlite3's statement cache."""

    def __init__(self, cached_statements: int) -> None:
        # Twice sqlite3's cache: the margin for the calls that touch ours but fail before sqlite3's lookup.
        self.capacity = 2 * max(cached_statements, 0)
        self._texts: OrderedDict[str, None] = OrderedDict()

    def executed(self, sql) -> bool:
        """Whether `sql`, about to be executed, writes (as sqlite3's cache is looked up, so is ours)."""
        if sql in self._texts:
            self._texts.move_to_end(sql)
            return True
        return False

    def add(self, sql: str) -> None:
        self._texts[sql] = None
        self._texts.move_to_end(sql)
        if len(self._texts) > self.capacity:
            self._texts.popitem(last=False)


class Turn:
    """One connection's place in the queue of writers of its database file."""

    def __init__(self, database: str, timeout: float, cached_statements: int) -> None:
        self.path = os.path.abspath(database) + "-writers"
        self.timeout = timeout
        self.asked = False  # for the transaction under way (whether or not the turn came in time)
        self.fd: int | None = None  # open (and locked) while this connection has its turn
        self.writers = Writers(cached_statements)
        self.executing: str | None = None  # the text of execute()/executemany() under way, whose prepare is seen

    def before(self, sql) -> None:
        """Called before `sql` is executed: a known writer takes the turn now, its cached statement runs unseen."""
        self.executing = sql if isinstance(sql, str) else None  # sqlite3 refuses the rest before any lookup
        if self.executing is not None and self.writers.executed(sql) and not self.asked:
            self.take()

    def authorize(self, action: int, _table, _column, database: str | None, _trigger) -> int:
        """sqlite3's authorizer: called while a statement is prepared, once per action it will take."""
        # The temp database is the connection's own: writing there waits for nobody.
        if action in _WRITES and database != "temp":
            if self.executing is not None:
                self.writers.add(self.executing)
            if not self.asked:
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
    # The turn is taken before a known writer runs (Turn.before) or while a statement is prepared
    # (Turn.authorize); here it is given back when due.
    def execute(self, statement, *args):
        try:
            self.connection._before(statement)
            return super().execute(statement, *args)
        finally:
            self.connection._after()

    def executemany(self, statement, *args):
        try:
            self.connection._before(statement)
            return super().executemany(statement, *args)
        finally:
            self.connection._after()

    def executescript(self, script):
        try:
            self.connection._before(None)  # prepared statement by statement, never cached: the authorizer sees all
            return super().executescript(script)
        finally:
            self.connection._after()


class Connection(sqlite3.Connection):
    """A sqlite3 connection that waits for its turn before writing (sqlite3.connect(..., factory=Connection))."""

    def __init__(self, database, *args, **kwargs) -> None:
        options = {**dict(zip(_PARAMETERS, args)), **kwargs}
        super().__init__(database, **options)
        name = os.fsdecode(database)
        # An in-memory database has no other writers; a URI is left to SQLite alone.
        plain_file = name not in ("", ":memory:") and not options.get("uri") and not name.startswith("file:")
        self._turn = None
        if plain_file and AVAILABLE:
            self._turn = Turn(name, options.get("timeout", 5.0), options.get("cached_statements", _CACHED_STATEMENTS))
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

    def _before(self, statement) -> None:
        if self._turn is not None:
            self._turn.before(statement)

    def _after(self) -> None:
        if self._turn is None:
            return
        self._turn.executing = None
        # The transaction is over (a commit, a rollback, a write in autocommit mode, a failed first write).
        if self._turn.asked and not self.in_transaction:
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
