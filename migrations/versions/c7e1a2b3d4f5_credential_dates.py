"""stores: when each mall credential was entered or renewed, and when it expires

Revision ID: c7e1a2b3d4f5
Revises: 512977705366
Create Date: 2026-12-01 00:30:00

Existing stores keep both dates unknown (NULL): we do not know when their keys were issued, so the pages show
「有効期限: 未登録」 and the shop enters the date the mall shows, rather than us inventing one.
"""
import sqlalchemy as sa
from alembic import op

revision = 'c7e1a2b3d4f5'
down_revision = '512977705366'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('stores', schema=None) as batch_op:
        batch_op.add_column(sa.Column('credentials_renewed_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('credentials_expire_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('credentials_reminded_days', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('stores', schema=None) as batch_op:
        batch_op.drop_column('credentials_reminded_days')
        batch_op.drop_column('credentials_expire_at')
        batch_op.drop_column('credentials_renewed_at')
