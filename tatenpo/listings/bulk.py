"""Bulk writes for big imports: plain executemany on the driver, with values prepared once in Python.

SQLAlchemy's per-row parameter processing (type conversions, RETURNING batches) costs more than the database
work itself for 100,000 rows, so the importer builds the rows as tuples and sends them here. The statements
run on the session's connection, inside the caller's transaction. Inserts go through COPY on PostgreSQL
(a round trip per row, even pipelined, costs several times the insert itself), updates through COPY into a
temporary table and one UPDATE … FROM it, and both through executemany on SQLite (in-process: no round trips
to save; a table with triggers — products and their search index — takes its rows in one INSERT … SELECT, see
BulkWriter.insert).
"""
from __future__ import annotations

import gc
import json
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Iterable, Iterator, Mapping, Sequence

from sqlalchemy import Table, literal

from tatenpo.platform.extensions import db

# One encoder for all rows: json.dumps with options builds a new encoder per call.
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode
# The same encoder's escaping of one string (what it writes for a str with ensure_ascii=False).
_STRING = json.encoder.encode_basestring


@contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """For reading and writing a big file. Every few hundred new objects Python's cycle collector runs, and
    the older generations hold every record and row read so far, so they are walked again and again: a third
    of a 100,000-row import. What an import builds lives until it ends and holds no cycles worth freeing
    early, so collection waits until it is done. (Process-wide; another thread's cycles just wait too.)"""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class BulkWriter:
    def __init__(self) -> None:
        self.connection = db.session.connection()
        dialect = self.connection.dialect
        self.postgresql = dialect.name == "postgresql"
        self.marker = "?" if dialect.paramstyle == "qmark" else "%s"
        self._quote = dialect.identifier_preparer.quote

    @staticmethod
    def time(value: datetime) -> str:
        """A time as a row's value. SQLAlchemy stores SQLite datetimes as this text, and PostgreSQL's COPY (which
        takes the rows there) reads it as the timestamp: psycopg sends a text as it is, where adapting a datetime
        costs it more than the rest of the row."""
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")

    @staticmethod
    def json(value: Any) -> str:
        """value as JSON text, exactly as _ENCODE writes it. A listing's attributes (a dict of texts and
        lists of texts) are written here directly: the encoder's set-up per call costs more than the
        writing, for 100,000 small dicts."""
        if type(value) is not dict:
            return _ENCODE(value)
        parts = []
        for key, item in value.items():
            if type(key) is not str:
                return _ENCODE(value)
            if type(item) is str:
                parts.append(f"{_STRING(key)}: {_STRING(item)}")
            elif type(item) is list and all(type(entry) is str for entry in item):
                parts.append(f"{_STRING(key)}: [{', '.join(map(_STRING, item))}]")
            else:
                return _ENCODE(value)
        return "{" + ", ".join(parts) + "}"

    def insert(self, table: Table, columns: Sequence[str], rows: Iterable[tuple],
               constants: Mapping[str, Any] | None = None) -> None:
        """rows: the values of `columns` (a list or a generator: either streams). `constants` (the same for
        every row: a timestamp, the store, the note) are written once instead of bound for each row."""
        constants = constants or {}
        names = ", ".join(self._quote(c) for c in (*columns, *constants))
        if self.postgresql:
            tail = tuple(self.time(v) if isinstance(v, datetime) else v for v in constants.values())
            self._copy(f"COPY {self._quote(table.name)} ({names}) FROM STDIN", rows, tail)
            return
        values = [self.marker] * len(columns) + [self._literal(table, c, v) for c, v in constants.items()]
        if not self._has_triggers(table):
            self._executemany(f"INSERT INTO {self._quote(table.name)} ({names}) VALUES ({', '.join(values)})", rows)
            return
        # A trigger that writes to an FTS5 index (products' search, see stock/search.py) made each row's INSERT
        # flush the index's pending terms to a new segment (FTS5 flushes at every statement's savepoint, and
        # executemany is a statement per row): five times the insert itself. The rows go to a temporary table
        # first and into the table in one INSERT … SELECT, so the trigger still keeps the index, in the same
        # transaction, with one flush for them all.
        # (A temporary table is the connection's own. Its creation may run before the transaction begins, so
        # one a rolled-back import left behind is dropped first.)
        staged = "temp." + self._quote(f"bulk_{table.name}")
        run = self.connection.exec_driver_sql
        run(f"DROP TABLE IF EXISTS {staged}")
        run(f"CREATE TABLE {staged} AS SELECT {', '.join(self._quote(c) for c in columns)} "
            f"FROM {self._quote(table.name)} WHERE 0")
        self._executemany(f"INSERT INTO {staged} VALUES ({', '.join([self.marker] * len(columns))})", rows)
        selected = ", ".join(["*", *values[len(columns):]])
        run(f"INSERT INTO {self._quote(table.name)} ({names}) SELECT {selected} FROM {staged} ORDER BY rowid")
        run(f"DROP TABLE {staged}")

    def _has_triggers(self, table: Table) -> bool:
        # One lookup in the schema (microseconds).
        return self.connection.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? LIMIT 1", (table.name,)
        ).first() is not None

    def _copy(self, sql: str, rows: Iterable[tuple], tail: tuple) -> None:
        cursor = self.connection.connection.dbapi_connection.cursor()
        try:
            with cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row + tail if tail else row)
        finally:
            cursor.close()

    def _literal(self, table: Table, column: str, value: Any) -> str:
        # The dialect's own literal rendering (quoting, booleans, the stored datetime format).
        expression = literal(value, table.c[column].type)
        return str(expression.compile(dialect=self.connection.dialect, compile_kwargs={"literal_binds": True}))

    def update(self, table: Table, columns: Sequence[str], key: str, rows: Iterable[tuple],
               constants: Mapping[str, Any] | None = None) -> None:
        """rows: (values of `columns`…, key value); a list or a generator. `constants` (the same for every row)
        are written once, as in insert. On PostgreSQL the rows COPY into a temporary table and one UPDATE … FROM
        takes them all (an UPDATE per row is a round trip per row)."""
        fixed = [f"{self._quote(c)} = {self._literal(table, c, v)}" for c, v in (constants or {}).items()]
        if self.postgresql:
            self._update_from(table, columns, key, rows, fixed)
            return
        sets = ", ".join([*(f"{self._quote(c)} = {self.marker}" for c in columns), *fixed])
        self._executemany(f"UPDATE {self._quote(table.name)} SET {sets} WHERE {self._quote(key)} = {self.marker}", rows)

    def _update_from(self, table: Table, columns: Sequence[str], key: str, rows: Iterable[tuple],
                     fixed: list[str]) -> None:
        quote = self._quote
        target, source = quote(table.name), quote(f"bulk_{table.name}")
        names = ", ".join(quote(c) for c in (*columns, key))
        run = self.connection.exec_driver_sql
        # The temporary table takes the target's column types (json, timestamp…), so COPY parses as it would.
        run(f"CREATE TEMPORARY TABLE {source} ON COMMIT DROP AS SELECT {names} FROM {target} WITH NO DATA")
        self._copy(f"COPY {source} ({names}) FROM STDIN", rows, ())
        sets = ", ".join([*(f"{quote(c)} = source.{quote(c)}" for c in columns), *fixed])
        run(f"UPDATE {target} AS target SET {sets} FROM {source} AS source WHERE target.{quote(key)} = source.{quote(key)}")
        run(f"DROP TABLE {source}")

    def _executemany(self, sql: str, rows: Iterable[tuple]) -> None:
        # The driver's own cursor, inside the session's transaction (the connection is the session's).
        cursor = self.connection.connection.dbapi_connection.cursor()
        try:
            cursor.executemany(sql, rows)
        finally:
            cursor.close()

    def ids_after(self, table: Table, after: int, columns: Iterable[str], where: str = "") -> list[tuple]:
        """Rows this transaction inserted (ids above `after`), e.g. to map new product codes to their ids."""
        names = ", ".join(self._quote(c) for c in columns)
        sql = f"SELECT {names} FROM {self._quote(table.name)} WHERE id > {self.marker}" + (f" AND {where}" if where else "")
        return self.select(sql, (after,))

    def select(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        """All rows of a query, fetched at once through the driver's own cursor."""
        cursor = self.connection.connection.dbapi_connection.cursor()
        try:
            cursor.execute(sql, parameters)
            return cursor.fetchall()
        finally:
            cursor.close()

    def max_id(self, table: Table) -> int:
        return self.connection.exec_driver_sql(f"SELECT COALESCE(MAX(id), 0) FROM {self._quote(table.name)}").scalar() or 0
