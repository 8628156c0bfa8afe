"""One blueprint per screen area. NAVIGATION is the menu every page shows, in the shop's order."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from tatenpo.views import (
    auth,
    dashboard,
    health,
    imports,
    inbound,
    listings,
    onboarding,
    orders,
    row_html,
    settings,
    stock,
    support,
    sync,
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
]


def init_app(app) -> None:
    row_html.init_app(app)
    for module in (auth, dashboard, health, imports, inbound, listings, onboarding, orders, settings, stock, support,
                   sync):
        app.register_blueprint(module.bp)

    @app.context_processor
    def _navigation():
        return {"navigation": NAVIGATION}
