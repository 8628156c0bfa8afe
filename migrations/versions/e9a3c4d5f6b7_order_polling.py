"""orders from the malls' order APIs: per-store polling cursor and status, the mall's order status

Revision ID: e9a3c4d5f6b7
Revises: d8f2b3c4e5a6
Create Date: 2026-12-01 00:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'e9a3c4d5f6b7'
down_revision = 'd8f2b3c4e5a6'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('stores') as batch:
        batch.add_column(sa.Column('order_api', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('order_poll_seconds', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('order_cursor_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('order_polled_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('order_poll_error_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('order_poll_error', sa.Text(), nullable=True))
    with op.batch_alter_table('orders') as batch:
        batch.add_column(sa.Column('mall_status', sa.String(length=64), nullable=False, server_default=''))
        batch.add_column(sa.Column('mall_updated_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('moves_stock', sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade():
    with op.batch_alter_table('orders') as batch:
        batch.drop_column('moves_stock')
        batch.drop_column('mall_updated_at')
        batch.drop_column('mall_status')
    with op.batch_alter_table('stores') as batch:
        batch.drop_column('order_poll_error')
        batch.drop_column('order_poll_error_at')
        batch.drop_column('order_polled_at')
        batch.drop_column('order_cursor_at')
        batch.drop_column('order_poll_seconds')
        batch.drop_column('order_api')
