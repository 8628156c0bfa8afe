"""users: the administrator role, a session version, disabling; login failures move to Redis

Revision ID: 512977705366
Revises: c41f0e7d2b18
Create Date: 2026-11-30 22:09:47.335690

The first user was made on the setup page as "the administrator" but stored as staff: that user becomes
the administrator, so someone can still manage users and stores after the upgrade. Failed logins are
counted in Redis now (atomic, per account and per address), so the two counter columns go.
"""
import sqlalchemy as sa
from alembic import op

revision = '512977705366'
down_revision = 'c41f0e7d2b18'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('disabled_at', sa.DateTime(), nullable=True))
        batch_op.drop_column('last_failed_login_at')
        batch_op.drop_column('failed_logins')
        batch_op.drop_constraint(op.f('ck_users_role'), type_='check')
        batch_op.create_check_constraint(op.f('ck_users_role'), "role in ('admin', 'staff', 'support')")
    op.execute(
        "UPDATE users SET role = 'admin' WHERE role = 'staff' AND id = (SELECT MIN(id) FROM users)"
    )


def downgrade():
    op.execute("UPDATE users SET role = 'staff' WHERE role = 'admin'")
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_users_role'), type_='check')
        batch_op.create_check_constraint(op.f('ck_users_role'), "role in ('staff', 'support')")
        batch_op.add_column(sa.Column('failed_logins', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('last_failed_login_at', sa.DateTime(), nullable=True))
        batch_op.drop_column('disabled_at')
        batch_op.drop_column('session_version')
