"""The time a bench's code spends in the database: the driver's execute calls, seen by SQLAlchemy's cursor
events, and the push's history lines, which on PostgreSQL go by COPY through the raw driver connection
(push.write_lines) where no cursor event sees them. bench/engine_overhead.py and bench/sync_db_cost.py
both count with it, so both count the COPY. Commits are not counted.

    clock = DbClock(db.engine)   # counts while clock.on (from the start)
    clock.reset()                # zero the tallies
"""
from __future__ import annotations

import time

from sqlalchemy import event

from tatenpo.platform.extensions import db
from tatenpo.sync import push

HISTORY_LINES = "COPY sync_attempts (the batch's history lines; INSERT on SQLite)"

_clocks: dict = {}  # engine → its clock: the history's writer finds the clock of the engine it writes to


class DbClock:
    """Wall time and this process's CPU time inside the database calls made on `engine`, their number, and
    both by statement (its opening). A call inside another (SQLite's history INSERT goes through the cursor
    events inside write_lines) is counted once, as the outer one."""

    def __init__(self, engine) -> None:
        self.on = True
        self.reset()
        self._depth = 0
        self._started = (0.0, 0.0)
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        event.listen(engine, "handle_error", self._failed)  # a failed call has no after_cursor_execute
        _clocks[engine] = self
        _time_history_lines()

    def reset(self) -> None:
        self.seconds = self.cpu = 0.0
        self.statements = 0
        self.by_statement: dict[str, list[float]] = {}  # the statement's opening → [seconds, calls]

    def _before(self, *args) -> None:
        self._depth += 1
        if self._depth == 1:
            self._started = (time.perf_counter(), time.process_time())

    def _failed(self, *args) -> None:
        self._depth = max(0, self._depth - 1)

    def _after(self, conn, cursor, statement, *args) -> None:
        self._depth -= 1
        if self._depth or not self.on:
            return
        wall, cpu = self._started
        spent = time.perf_counter() - wall
        self.seconds += spent
        self.cpu += time.process_time() - cpu
        self.statements += 1
        tally = self.by_statement.setdefault(" ".join(statement.split())[:70], [0.0, 0])
        tally[0] += spent
        tally[1] += 1


def _time_history_lines() -> None:
    """Wrap push.write_lines (once) so that the lines it writes count as DB time on the clock of their
    engine: on PostgreSQL they go by COPY, which no cursor event sees."""
    if getattr(push.write_lines, "bench_timed", False):
        return
    write = push.write_lines

    def timed(rows):
        clock = _clocks.get(db.session.get_bind())
        if clock is None:
            return write(rows)
        clock._before()
        try:
            write(rows)
        finally:
            clock._after(None, None, HISTORY_LINES)

    timed.bench_timed = True
    push.write_lines = timed
