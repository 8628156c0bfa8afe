"""stores: the mall is checked by the mall registry, not by a list in the database

Revision ID: c41f0e7d2b18
Revises: ab083d6a3897
Create Date: 2026-11-30 22:10:00

The CHECK listed every mall key, so each new mall needed a migration that widened it (and autogenerate does
not compare CHECK constraints, so a forgotten one went unnoticed until a store of the new mall was saved).
The registry (tatenpo.malls) is the one list; stores are made through setup.stores, which refuses a key it
does not know.
"""
from alembic import op

revision = 'c41f0e7d2b18'
down_revision = 'ab083d6a3897'
branch_labels = None
depends_on = None

MALLS_THEN = ('rakuten', 'rakuten-ftp', 'yahoo', 'amazon', 'shopify')


def upgrade():
    with op.batch_alter_table('stores', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_stores_mall'), type_='check')


def downgrade():
    with op.batch_alter_table('stores', schema=None) as batch_op:
        batch_op.create_check_constraint('mall', "mall in (" + ", ".join(f"'{m}'" for m in MALLS_THEN) + ")")
