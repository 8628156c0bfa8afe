"""indexes for the searches a shop types and for a catalog with months of sync history

Revision ID: fa4b5c6d7e8f
Revises: 0b5c6d7e8f90
Create Date: 2026-12-01 00:30:00

- SQLite: products' search_text in an FTS5 trigram index with its triggers (tatenpo.stock.search.PRODUCTS_FTS),
  filled from the products already there. PostgreSQL has its trigram indexes from 3b7d2f9c41a6.
- sync_attempts (在庫同期履歴, 90 days of one line per listing per push): the newest attempt per listing
  (listing_id, id) in place of listing_id alone; the history newest first and by day (created_at, id); the
  ✗ lines alone, by listing and by time (partial indexes: few rows however long the history).
"""
import sqlalchemy as sa
from alembic import op

revision = 'fa4b5c6d7e8f'
down_revision = '0b5c6d7e8f90'
branch_labels = None
depends_on = None

# tatenpo.stock.search.PRODUCTS_FTS_DDL as it was at this revision (a migration keeps its own copy).
FTS_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS products_fts USING fts5(search_text, content='products', "
    "content_rowid='id', tokenize='trigram case_sensitive 1')",
    "CREATE TRIGGER IF NOT EXISTS products_fts_insert AFTER INSERT ON products BEGIN "
    "INSERT INTO products_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
    "CREATE TRIGGER IF NOT EXISTS products_fts_delete AFTER DELETE ON products BEGIN "
    "INSERT INTO products_fts(products_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text); END",
    "CREATE TRIGGER IF NOT EXISTS products_fts_update AFTER UPDATE OF search_text ON products BEGIN "
    "INSERT INTO products_fts(products_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text); "
    "INSERT INTO products_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
)


def _failed(where_sqlite: bool):
    return {"sqlite_where": sa.text("ok IS 0")} if where_sqlite else {"postgresql_where": sa.text("ok IS false")}


def upgrade():
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        for statement in FTS_DDL:
            op.execute(statement)
        op.execute("INSERT INTO products_fts(products_fts) VALUES ('rebuild')")
    with op.batch_alter_table('sync_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_attempts_listing_id')
        batch_op.create_index('ix_sync_attempts_listing_newest', ['listing_id', 'id'], unique=False)
        batch_op.create_index('ix_sync_attempts_created', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_sync_attempts_failed', ['listing_id', 'id'], unique=False, **_failed(sqlite))
        batch_op.create_index('ix_sync_attempts_failed_created', ['created_at', 'id'], unique=False,
                              **_failed(sqlite))


def downgrade():
    with op.batch_alter_table('sync_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_attempts_failed_created')
        batch_op.drop_index('ix_sync_attempts_failed')
        batch_op.drop_index('ix_sync_attempts_created')
        batch_op.drop_index('ix_sync_attempts_listing_newest')
        batch_op.create_index('ix_sync_attempts_listing_id', ['listing_id'], unique=False)
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS products_fts_{trigger}")
        op.execute("DROP TABLE IF EXISTS products_fts")
