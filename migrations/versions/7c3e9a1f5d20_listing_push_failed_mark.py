"""listings: a stored ✗ mark (the newest push failed), so the ✗ filters are an index lookup

Revision ID: 7c3e9a1f5d20
Revises: 2b8f6d4e0c31
Create Date: 2026-12-01 09:30:00

- listings.push_failed: the listing's newest push attempt failed (✗). The ✗ filters found those listings by
  walking every failed line of the history and checking each had no newer attempt: a cost that followed the
  history's failures, not the listings shown. From now on the push keeps the mark in the transaction that
  writes the history lines (tatenpo.sync.push.mark_newest).
- Filled from the history as it stands: the listings whose newest attempt is not ok, in one UPDATE (the ✗
  lines alone, by ix_sync_attempts_failed, each checked for a newer attempt in ix_sync_attempts_listing_newest).
- ix_listings_push_failed: the ✗ listings alone (a partial index), by store and code as 販売データ lists them,
  created after the fill so it is built once.
"""
import sqlalchemy as sa
from alembic import op

revision = '7c3e9a1f5d20'
down_revision = '2b8f6d4e0c31'
branch_labels = None
depends_on = None

# The ✗ listings as the history says them (a migration keeps its own copy of what
# tatenpo.sync.listing_state.failed_listings was): each failed line with no newer line of its listing.
FILL = """
UPDATE listings SET push_failed = {true} WHERE id IN (
    SELECT failed.listing_id FROM sync_attempts failed
    WHERE failed.ok IS {false} AND failed.listing_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM sync_attempts newer
                      WHERE newer.listing_id = failed.listing_id AND newer.id > failed.id)
)
"""


def upgrade():
    sqlite = op.get_bind().dialect.name == "sqlite"
    # A constant default: PostgreSQL and SQLite add the column without rewriting the table.
    op.add_column('listings', sa.Column('push_failed', sa.Boolean(), server_default=sa.false(), nullable=False))
    # `ok IS 0` / `ok IS false`: the WHERE of ix_sync_attempts_failed, so each database reads the ✗ lines alone.
    op.execute(FILL.format(true="1", false="0") if sqlite else FILL.format(true="true", false="false"))
    # The WHERE as each database renders `Listing.push_failed` (SQLite matches a partial index's WHERE term
    # for term).
    where = {"sqlite_where": sa.text("push_failed = 1")} if sqlite else {"postgresql_where": sa.text("push_failed")}
    op.create_index('ix_listings_push_failed', 'listings', ['store_id', 'code'], unique=False, **where)


def downgrade():
    op.drop_index('ix_listings_push_failed', table_name='listings')
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.drop_column('push_failed')
