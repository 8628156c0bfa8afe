"""products: on SQLite, the search text indexed with the code, for the pages of a common word

Revision ID: 5e2d7c9a4b18
Revises: 7c3e9a1f5d20
Create Date: 2026-12-01 23:30:00

- SQLite: ix_products_code_search_text (code, search_text) in place of ix_products_search_text (search_text).
  A search found in many products is tested row by row in code order (tatenpo.stock.search, MANY); with this
  index the test reads the index alone and the table only for the page's fifty rows. The capped counts read it
  as they read the search text's own index, so that one goes: one B-tree to keep, as before.
- PostgreSQL: nothing changes. Its trigram indexes find such rows, and its index entries are capped at 2,704
  bytes, which a long code and search text together could pass.
"""
from alembic import op

revision = '5e2d7c9a4b18'
down_revision = '7c3e9a1f5d20'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE INDEX ix_products_code_search_text ON products (code, search_text)")
        op.execute("DROP INDEX ix_products_search_text")


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE INDEX ix_products_search_text ON products (search_text)")
        op.execute("DROP INDEX ix_products_code_search_text")
