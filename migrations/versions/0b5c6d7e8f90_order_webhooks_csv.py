"""orders from Shopify webhooks and order CSVs: delivery ids seen, webhook routes

Revision ID: 0b5c6d7e8f90
Revises: e9a3c4d5f6b7
Create Date: 2026-12-01 00:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0b5c6d7e8f90'
down_revision = 'e9a3c4d5f6b7'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('webhook_deliveries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('delivery_id', sa.String(length=100), nullable=False),
    sa.Column('topic', sa.String(length=64), nullable=False),
    sa.Column('order_number', sa.String(length=64), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_webhook_deliveries_store_id_stores'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries')),
    sa.UniqueConstraint('store_id', 'delivery_id', name='uq_webhook_deliveries_store_delivery')
    )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_received_at'), ['received_at'], unique=False)

    with op.batch_alter_table('stores', schema=None) as batch_op:
        batch_op.add_column(sa.Column('webhooks_on', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('webhook_token', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('last_webhook_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('webhook_error', sa.Text(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_stores_webhook_token'), ['webhook_token'])


def downgrade():
    with op.batch_alter_table('stores', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_stores_webhook_token'), type_='unique')
        batch_op.drop_column('webhook_error')
        batch_op.drop_column('last_webhook_at')
        batch_op.drop_column('webhook_token')
        batch_op.drop_column('webhooks_on')

    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_received_at'))

    op.drop_table('webhook_deliveries')
