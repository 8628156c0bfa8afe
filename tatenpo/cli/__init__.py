"""Shell commands (`flask --app app …`) for operators and scripts. Each group lives in its own module."""
from __future__ import annotations

from tatenpo.cli import credentials, listings, orders, sets, stock, stores, support, sync, users


def init_app(app) -> None:
    for module in (users, stores, stock, sets, support, sync, listings, orders, credentials):
        module.register(app)
