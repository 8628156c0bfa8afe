"""Writers to one SQLite database take turns, woken the moment the database is free.

SQLite lets one connection write at a time; the others wait in its busy handler, which sleeps 1, 2, 5, 10 …
up to 100 ms between tries, so the database sits idle while writers queue and the unlucky ones wait longest.
Sixteen clients saving stock at once (bench/pages.py) saw 1 save in 20 take over 100 ms and the slowest over
500 ms; taking turns, the slowest stay under about 100 ms (the typical save waits a little longer, since
every writer now waits for those before it).

Here a connection waits for its turn before the first write of a transaction instead: an flock of a file
beside the database, which the kernel hands to the next waiter on release, across the web workers, the RQ
worker and the CLI alike (and gives back when a process dies). The turn ends with the transaction's commit or
rollback. A connection waits for its turn at most its SQLite timeout; after that SQLite's own waiting applies,
as before. The file lock is only a queue in front of SQLite's lock: correctness never depends on it.

Used through sqlite3.connect(..., factory=Connection) (see tatenpo._sqlite_options).
"""
from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import weakref
from contextlib import contextmanager
from typing import Iterator, Optional

# The statements before which sqlite3 opens a write transaction itself (its default transaction control).
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def _is_write(statement: str) -> bool:
    return statement.lstrip()[:7].upper().startswith(_WRITES)


class Turn:
    """One connection's place in the queue of writers of its database file."""

    def __init__(self, database: str, timeout: float) -> None:
        self.path = os.path.abspath(database) + "-writers"
        self.timeout = timeout
        self.asked = False  # for the transaction under way (whether or not the turn came in time)
        self.fd: Optional[int] = None  # open (and locked) while this connection has its turn

    def take(self) -> None:
        self.asked = True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fd = self._wait(fd)
        self.fd = fd
        if fd is not None:
            # A connection dropped mid-transaction (never committed, rolled back or closed) must not keep the
            # turn for the rest of its process's life: the descriptor is closed when the connection goes.
            self._release = weakref.finalize(self, os.close, fd)

    def _wait(self, fd: int) -> Optional[int]:
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
    def execute(self, statement, *args):
        with self.connection._turn_for(statement):
            return super().execute(statement, *args)

    def executemany(self, statement, *args):
        with self.connection._turn_for(statement):
            return super().executemany(statement, *args)


class Connection(sqlite3.Connection):
    """A sqlite3 connection that waits for its turn before writing (sqlite3.connect(..., factory=Connection))."""

    def __init__(self, database, *args, **kwargs) -> None:
        super().__init__(database, *args, **kwargs)
        name = os.fsdecode(database)
        timeout = kwargs.get("timeout", args[0] if args else 5.0)
        # An in-memory database has no other writers; a URI is left to SQLite alone.
        plain_file = name not in ("", ":memory:") and not kwargs.get("uri") and not name.startswith("file:")
        self._turn = Turn(name, timeout) if plain_file else None

    def cursor(self, factory=Cursor):
        return super().cursor(factory)

    # sqlite3's own shortcuts make their cursor in C, past cursor() above.
    def execute(self, statement, *args):
        return self.cursor().execute(statement, *args)

    def executemany(self, statement, *args):
        return self.cursor().executemany(statement, *args)

    @contextmanager
    def _turn_for(self, statement: str) -> Iterator[None]:
        """Wait for the turn before a transaction's first write; give it back once the transaction is over."""
        if self._turn is not None and not self._turn.asked and _is_write(statement):
            self._turn.take()
        try:
            yield
        finally:
            self._after()

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
