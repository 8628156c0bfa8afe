"""What a page asks the database, and how SQLite plans it: for the tests that prove a page reads its rows
through the index meant for them."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event


@contextmanager
def statements_run(engine, containing: str) -> Iterator[list[tuple[str, object]]]:
    """The (SQL, parameters) of the statements the engine runs inside the block whose SQL contains
    `containing`, as the driver got them."""
    found: list[tuple[str, object]] = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        if containing in statement:
            found.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", keep)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", keep)


def sqlite_plan(engine, statement: str, parameters) -> str:
    """SQLite's EXPLAIN QUERY PLAN of a statement, its steps joined by " | "."""
    with engine.connect() as connection:
        return " | ".join(row[3] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))
