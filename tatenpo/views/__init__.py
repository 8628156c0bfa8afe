"""One blueprint per screen area. NAVIGATION is the menu every page shows, in the shop's order."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

# (endpoint, label, blueprint name that marks the item active)
NAVIGATION = [
    ("dashboard.index", _l("Top"), "dashboard"),
    ("onboarding.index", _l("Setup guide"), "onboarding"),
    ("stock.index", _l("Products & stock"), "stock"),
    ("listings.index", _l("Listings"), "listings"),
    ("imports.index", _l("Listing import"), "imports"),
    ("sync.index", _l("Sync history"), "sync"),
    ("settings.stores", _l("Settings › EC sites"), "settings"),
    ("support.index", _l("Support center"), "support"),
]


def register_blueprints(app) -> None:
    from tatenpo.views import (
        auth,
        dashboard,
        health,
        imports,
        listings,
        onboarding,
        row_html,
        settings,
        stock,
        support,
        sync,
    )

    row_html.init_app(app)
    for module in (auth, dashboard, health, imports, listings, onboarding, settings, stock, support, sync):
        app.register_blueprint(module.bp)

    @app.context_processor
    def _navigation():
        return {"navigation": NAVIGATION}
