"""Every template filter and global the pages share, registered here and nowhere else (views.init_app calls
`init_app`): the menu, mall names, the rows' poll intervals, the order labels, the mall hints, why an import
waits. The generic number and local-time filters are tatenpo.platform.web's.

Fixed values are Jinja globals rather than context processors: a context processor runs on every render,
the single rows htmx redraws included, and globals also reach macros imported without context.
"""
from __future__ import annotations

from flask import request, url_for
from flask_babel import get_locale
from flask_login import current_user
from markupsafe import escape

from tatenpo import malls as mall_registry
from tatenpo.listings.lifecycle import waiting_reason
from tatenpo.malls.base import hint_text
from tatenpo.orders import book
from tatenpo.platform.auth import may
from tatenpo.orders import polling as order_polling
from tatenpo.setup.authorization import offer as authorization_offer
from tatenpo.setup import credential_dates
from tatenpo.stock.table import poll_seconds
from tatenpo.views import stock as stock_rows
from tatenpo.views.orders import SOURCE_LABELS


def mall_name(value: str) -> str:
    """rakuten → 楽天市場 (mall families and store malls alike; the malls' own names are not translated)."""
    family = mall_registry.family_of(value) if value in mall_registry.keys() else value
    try:
        return mall_registry.family_name(family)
    except KeyError:
        return value


def menu_of(navigation: list):
    """`menu()` for base.html: the entries of `navigation` the current user's role may open, as (address,
    label, blueprint that marks it current), the label escaped. What a role may open, the labels in a language
    and the addresses under one script root never change while the app runs, so each combination is worked
    out once per process rather than on every page (a dozen permission checks and url_for calls each time)."""
    known: dict[tuple, tuple] = {}

    def menu() -> tuple:
        user = current_user._get_current_object()
        key = (user.role, str(get_locale()), request.script_root)
        entries = known.get(key)
        if entries is None:
            entries = known[key] = tuple(
                (url_for(endpoint), escape(label), area) for endpoint, label, area in navigation
                if may(endpoint, user)
            )
        return entries

    return menu


def init_app(app, navigation: list) -> None:
    app.jinja_env.filters["mall_name"] = mall_name
    app.jinja_env.globals.update(
        navigation=navigation,
        menu=menu_of(navigation),  # base.html's main menu
        # The product rows and the pieces the listing rows share with them (templates/_rows.html).
        draw_product_rows=stock_rows.product_rows,
        draw_sync_badges=stock_rows.sync_badges,
        draw_stock_link=stock_rows.stock_link,
        hint_text=hint_text,
        poll_seconds=poll_seconds,
        order_status_labels=book.STATUS_LABELS,
        order_source_labels=SOURCE_LABELS,
        import_waiting_reason=waiting_reason,
        authorization_offer=authorization_offer,  # a store's 認可 button (settings/_authorize.html)
        expiring_credentials=credential_dates.expiring,  # settings/_expiring_credentials.html
        order_api_available=order_polling.can_poll,  # settings/_order_routes.html
        failing_order_polls=order_polling.failing_stores,  # dashboard/_order_polls.html
    )
