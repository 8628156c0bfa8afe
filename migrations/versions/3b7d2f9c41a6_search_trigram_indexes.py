"""search: trigram indexes for 'contains' searches on PostgreSQL

Revision ID: 3b7d2f9c41a6
Revises: 8e60c8aaa720
Create Date: 2026-11-27 05:45:00

A search matches anywhere inside search_text (LIKE '%…%'), which a btree index cannot serve: on PostgreSQL
a rare code or a word found nowhere scanned all 100,000 rows (20–35 ms). A GIN trigram index (pg_trgm)
finds such rows directly. It is optional: where the extension cannot be created (no rights on a managed
server), the migration goes on without it and searches scan as before. SQLite has no such index and needs
none for its sizes (see tatenpo/search.py). Not in the models, because it exists on one backend and only
when allowed: tatenpo.stock.search.in_models keeps autogenerate from dropping it.
"""
import logging

from alembic import op
from sqlalchemy.exc import DBAPIError

revision = '3b7d2f9c41a6'
down_revision = '8e60c8aaa720'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

TABLES = ("products", "listings")


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    try:
        with bind.begin_nested():  # a savepoint: a refusal leaves the migration's transaction usable
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DBAPIError as exc:
        log.warning("pg_trgm is not available (%s); searches inside codes and names will scan the tables",
                    str(exc.orig).strip().splitlines()[0])
        return
    for table in TABLES:
        op.execute(f"CREATE INDEX IF NOT EXISTS ix_{table}_search_trgm ON {table} USING gin (search_text gin_trgm_ops)")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP INDEX IF EXISTS ix_{table}_search_trgm")
