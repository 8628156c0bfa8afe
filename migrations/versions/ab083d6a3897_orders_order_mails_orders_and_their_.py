"""orders: order mails, orders and their lines; stock history names the order

Revision ID: ab083d6a3897
Revises: 3b7d2f9c41a6
Create Date: 2026-11-30 21:35:21.780278

受注 by mail: the raw order mails as they arrived (kept before they are read), the orders (one per store and
mall order number) and their lines with what each has done to stock; 在庫履歴 rows name the order and the
引当数 they moved; a store's HTTP door token, last order mail and its 説明のない減少 setting; a listing's code
as orders print it and an unexplained decrease on the mall; a push held back while an order may be coming.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'ab083d6a3897'
down_revision = '3b7d2f9c41a6'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('sources', sa.JSON(), nullable=False),
    sa.Column('ordered_at', sa.DateTime(), nullable=True),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.Column('shipped_at', sa.DateTime(), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(), nullable=True),
    sa.Column('search_text', sa.String(length=2000), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("status in ('received', 'shipped', 'cancelled')", name=op.f('ck_orders_status')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_orders_store_id_stores'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders')),
    sa.UniqueConstraint('store_id', 'number', name='uq_orders_store_number')
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_orders_received_at'), ['received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_status'), ['status'], unique=False)

    op.create_table('inbound_mails',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=True),
    sa.Column('recipient', sa.String(length=254), nullable=False),
    sa.Column('sender', sa.String(length=254), nullable=False),
    sa.Column('subject', sa.String(length=500), nullable=False),
    sa.Column('message_id', sa.String(length=500), nullable=True),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('via', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.Column('read_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status in ('received', 'order', 'ignored', 'failed')", name=op.f('ck_inbound_mails_status')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_inbound_mails_order_id_orders'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_inbound_mails_store_id_stores'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_mails'))
    )
    with op.batch_alter_table('inbound_mails', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbound_mails_received_at'), ['received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_mails_store_id'), ['store_id'], unique=False)

    op.create_table('order_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('item_code', sa.String(length=255), nullable=False),
    sa.Column('variant_code', sa.String(length=255), nullable=False),
    sa.Column('choices', sa.String(length=500), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price', sa.Integer(), nullable=True),
    sa.Column('listing_id', sa.Integer(), nullable=True),
    sa.Column('product_id', sa.Integer(), nullable=True),
    sa.Column('stock', sa.String(length=16), nullable=False),
    sa.CheckConstraint("stock in ('none', 'allocated', 'shipped', 'released', 'restocked')", name=op.f('ck_order_lines_stock')),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_order_lines_quantity')),
    sa.ForeignKeyConstraint(['listing_id'], ['listings.id'], name=op.f('fk_order_lines_listing_id_listings'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_lines_order_id_orders'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_order_lines_product_id_products'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_lines'))
    )
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_lines_listing_id'), ['listing_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_order_lines_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_order_lines_product_id'), ['product_id'], unique=False)

    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mall_expected', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('unexplained_decrease', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('order_code', sa.String(length=255), server_default='', nullable=False))
        batch_op.create_index('ix_listings_store_order_code', ['store_id', 'order_code'], unique=False)

    with op.batch_alter_table('stock_history', schema=None) as batch_op:
        batch_op.add_column(sa.Column('allocated_change', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('order_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_stock_history_order_id'), ['order_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_stock_history_order_id_orders'), 'orders', ['order_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('stores', schema=None) as batch_op:
        batch_op.add_column(sa.Column('inbound_token', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('last_order_mail_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('adopt_unexplained_decrease', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_unique_constraint(batch_op.f('uq_stores_inbound_token'), ['inbound_token'])

    with op.batch_alter_table('sync_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('held_since', sa.DateTime(), nullable=True))



def downgrade():
    with op.batch_alter_table('sync_entries', schema=None) as batch_op:
        batch_op.drop_column('held_since')

    with op.batch_alter_table('stores', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_stores_inbound_token'), type_='unique')
        batch_op.drop_column('adopt_unexplained_decrease')
        batch_op.drop_column('last_order_mail_at')
        batch_op.drop_column('inbound_token')

    with op.batch_alter_table('stock_history', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_stock_history_order_id_orders'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_stock_history_order_id'))
        batch_op.drop_column('order_id')
        batch_op.drop_column('allocated_change')

    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.drop_index('ix_listings_store_order_code')
        batch_op.drop_column('order_code')
        batch_op.drop_column('unexplained_decrease')
        batch_op.drop_column('mall_expected')

    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_lines_product_id'))
        batch_op.drop_index(batch_op.f('ix_order_lines_order_id'))
        batch_op.drop_index(batch_op.f('ix_order_lines_listing_id'))

    op.drop_table('order_lines')
    with op.batch_alter_table('inbound_mails', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_mails_store_id'))
        batch_op.drop_index(batch_op.f('ix_inbound_mails_received_at'))

    op.drop_table('inbound_mails')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_orders_status'))
        batch_op.drop_index(batch_op.f('ix_orders_received_at'))

    op.drop_table('orders')
