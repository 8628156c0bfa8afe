"""One blueprint per screen area (the three import screens — listing_import, unlinked, stock_import — share
one, `imports`). NAVIGATION is the menu every page shows, in the shop's order. Every template filter and
global the views add is registered in one place: views/templating.py."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from tatenpo.views import (
    auth,
    authorize,
    dashboard,
    health,
    inbound,
    listing_import,
    listings,
    onboarding,
    order_import,
    order_routes,
    orders,
    settings,
    stock,
    set_import,
    stock_import,
    support,
    sync,
    templating,
    unlinked,
    users,
    webhooks,
)

# (endpoint, label, blueprint name that marks the item active)
NAVIGATION = [
    ("dashboard.index", _l("Top"), "dashboard"),
    ("onboarding.index", _l("Setup guide"), "onboarding"),
    ("stock.index", _l("Products & stock"), "stock"),
    ("listings.index", _l("Listings"), "listings"),
    ("orders.index", _l("Orders"), "orders"),
    ("imports.index", _l("Listing import"), "imports"),
    ("sync.index", _l("Sync history"), "sync"),
    ("settings.stores", _l("Settings › EC sites"), "settings"),
    ("support.index", _l("Support center"), "support"),
    ("users.index", _l("Users"), "users"),  # the administrator's only (platform.auth.ACCESS)
]


def init_app(app) -> None:
    templating.init_app(app, NAVIGATION)
    modules = (auth, dashboard, health, listing_import, unlinked, stock_import, set_import, inbound, listings, onboarding, orders,
               settings, authorize, stock, support, sync, users, webhooks, order_import, order_routes)
    # dict.fromkeys: the three import screens share one blueprint, registered once.
    for blueprint in dict.fromkeys(module.bp for module in modules):
        app.register_blueprint(blueprint)
