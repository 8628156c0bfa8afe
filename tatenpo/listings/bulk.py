"""Bulk writes for big imports: plain executemany on the driver, with values prepared once in Python.

SQLAlchemy's per-row parameter processing (type conversions, RETURNING batches) costs more than the database
work itself for 100,000 rows, so the importer builds the rows as tuples and sends them here. The statements
run on the session's connection, inside the caller's transaction.
"""
from __future__ import annotations

import json
import unicodedata
from datetime import datetime
from typing import Any, Iterable, Sequence

from sqlalchemy import Table

from ..extensions import db

# One encoder for all rows: json.dumps with options builds a new encoder per call.
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode


def fold(text: str) -> str:
    """One part of models.search_key: NFKC + casefold, with a shortcut for plain ASCII."""
    return text.lower() if text.isascii() else unicodedata.normalize("NFKC", text).casefold()


def search_text(*parts: str) -> str:
    """models.search_key(*parts), folding each part on its own so a caller can fold a long title once and
    reuse it (the parts are joined by a space, across which NFKC composes nothing)."""
    return " ".join(fold(p) for p in parts if p)


class BulkWriter:
    def __init__(self) -> None:
        self.connection = db.session.connection()
        dialect = self.connection.dialect
        self.sqlite = dialect.name == "sqlite"
        self.marker = "?" if dialect.paramstyle == "qmark" else "%s"
        self._quote = dialect.identifier_preparer.quote

    def time(self, value: datetime) -> Any:
        # SQLAlchemy stores SQLite datetimes as this text; other drivers take the datetime itself.
        return value.strftime("%Y-%m-%d %H:%M:%S.%f") if self.sqlite else value

    @staticmethod
    def json(value: Any) -> str:
        return _ENCODE(value)

    def insert(self, table: Table, columns: Sequence[str], rows: list[tuple]) -> None:
        if not rows:
            return
        names = ", ".join(self._quote(c) for c in columns)
        markers = ", ".join([self.marker] * len(columns))
        self._executemany(f"INSERT INTO {self._quote(table.name)} ({names}) VALUES ({markers})", rows)

    def update(self, table: Table, columns: Sequence[str], key: str, rows: list[tuple]) -> None:
        """rows: (values of `columns`…, key value)."""
        if not rows:
            return
        sets = ", ".join(f"{self._quote(c)} = {self.marker}" for c in columns)
        self._executemany(f"UPDATE {self._quote(table.name)} SET {sets} WHERE {self._quote(key)} = {self.marker}", rows)

    def _executemany(self, sql: str, rows: list[tuple]) -> None:
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
