"""history page speed: the store-level ✗ lines of 在庫同期履歴 by index

Revision ID: 2b8f6d4e0c31
Revises: fa4b5c6d7e8f
Create Date: 2026-12-01 04:00:00

- sync_runs: the runs that pushed nothing (blocked, or failed with nothing pushed), newest first, in a
  partial index: the history page reads its newest store-level ✗ lines without walking every run (a day of
  immediate pushes writes thousands of runs, and a healthy shop's have none of these).
"""
import sqlalchemy as sa
from alembic import op

revision = '2b8f6d4e0c31'
down_revision = 'fa4b5c6d7e8f'
branch_labels = None
depends_on = None

# tatenpo.models.SyncRun's index as it was at this revision (a migration keeps its own copy).
STORE_LEVEL = "status = 'blocked' OR (status = 'failed' AND total = 0)"


def upgrade():
    where = "sqlite_where" if op.get_bind().dialect.name == "sqlite" else "postgresql_where"
    with op.batch_alter_table('sync_runs', schema=None) as batch_op:
        batch_op.create_index('ix_sync_runs_store_level', ['started_at', 'id'], unique=False,
                              **{where: sa.text(STORE_LEVEL)})


def downgrade():
    with op.batch_alter_table('sync_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_runs_store_level')
