"""set products: a set's parts and their quantities

Revision ID: d8f2b3c4e5a6
Revises: c7e1a2b3d4f5
Create Date: 2026-12-01 00:30:00

A セット商品 holds no stock of its own: its 販売可能数 is computed from its parts (tatenpo/stock/rules.py).
`products.is_set` marks it, so that an ordinary product's stock is read without looking at set_parts, and the
database refuses stock on a set.
"""
import sqlalchemy as sa
from alembic import op

revision = 'd8f2b3c4e5a6'
down_revision = 'c7e1a2b3d4f5'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_set', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_check_constraint(
            batch_op.f('ck_products_set_holds_no_stock'), 'NOT is_set OR (on_hand = 0 AND allocated = 0)')
    op.create_table('set_parts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('set_id', sa.Integer(), nullable=False),
    sa.Column('part_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_set_parts_quantity')),
    sa.CheckConstraint('set_id <> part_id', name=op.f('ck_set_parts_not_itself')),
    sa.ForeignKeyConstraint(['part_id'], ['products.id'], name=op.f('fk_set_parts_part_id_products'),
                            ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['set_id'], ['products.id'], name=op.f('fk_set_parts_set_id_products'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_set_parts')),
    sa.UniqueConstraint('set_id', 'part_id', name='uq_set_parts_pair')
    )
    with op.batch_alter_table('set_parts', schema=None) as batch_op:
        batch_op.create_index('ix_set_parts_part_id', ['part_id'], unique=False)


def downgrade():
    with op.batch_alter_table('set_parts', schema=None) as batch_op:
        batch_op.drop_index('ix_set_parts_part_id')
    op.drop_table('set_parts')
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_products_set_holds_no_stock'), type_='check')
        batch_op.drop_column('is_set')
