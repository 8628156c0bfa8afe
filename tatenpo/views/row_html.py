"""The HTML of the rows the big tables draw fifty at a time: a product row of 商品・在庫, the 在庫数 link that
opens the edit row, and a listing's sync badge.

Built in Python rather than in Jinja because these are the bulk of the 商品・在庫 page: at about forty
outputs per row, Jinja's per-output cost (attribute lookup, escaping) made the rows take longer than the
rest of the page and its two queries together. Every text from the shop or a mall goes through `escape`;
numbers go through web.number (the |number filter). Templates use these as globals, so each piece of
markup has one source.
"""
from __future__ import annotations

from html import escape

from markupsafe import Markup

from tatenpo.platform.web import number
from tatenpo.sync import listing_state


def sync_badge(s, labels: dict) -> Markup:
    """One badge per listing: the store and where its stock stands (fixed width in the stylesheet, so polling
    never moves the row). `s` is a listing_state.ListingBadge; `labels` comes from views.stock.row_labels()."""
    return Markup(_badge(s, labels))


def stock_link(product, row_url: str, labels: dict, link_id: str) -> Markup:
    """The 在庫数 cell's content outside editing: a link that opens the edit row (click or Enter). It has an id,
    so that htmx keeps the keyboard focus on it when a polling row is redrawn."""
    return Markup(_stock_link(product, escape(str(row_url)), labels, escape(link_id)))


def product_row(p, labels: dict, base: str, stock_cell: Markup | None = None) -> Markup:
    """One row of the product table (a views.stock.ProductRow). `stock_cell` is the edit row's 在庫数 cell
    (stock/_cell.html); without it the row shows the stock as a link and, while a listing waits for its
    push, asks for its new state every few seconds."""
    return Markup(_product_row(p, labels, escape(base), stock_cell))


def product_rows(rows, labels: dict, base: str) -> Markup:
    """The rows of a page of the product table."""
    base = escape(base)
    return Markup("\n".join(_product_row(p, labels, base) for p in rows))


# The builders below return plain strings: `escape` (html.escape, quotes included) on every text, and one
# Markup for the whole result, since a Markup per piece cost as much as the rest of the row.


def _badge(s, labels: dict) -> str:
    listing = s.listing
    store = escape(listing.store.name)
    title = f"{store} · {escape(listing.code)}"
    if s.message:
        title += f" — {escape(s.message)}"
    word = escape(labels["states"][s.state])
    if s.state == listing_state.OK and listing.reflected:
        word += " " + escape(labels["reflected"])
    return (
        f'<span class="badge sync sync-{s.state}" data-store="{listing.store_id}" data-state="{s.state}" '
        f'title="{title}"><span class="sync-store">{store}</span> <span class="sync-state">{word}</span></span>'
    )


def _stock_link(product, row_url: str, labels: dict, link_id: str) -> str:
    aria = escape(labels["edit_aria"] % {"code": product.code, "n": product.on_hand})
    return (
        f'<a class="stock-edit" id="{link_id}" href="{row_url}/stock/edit" hx-get="{row_url}/stock/edit" '
        f'hx-target="closest tr" hx-swap="outerHTML" title="{escape(labels["edit"])}" aria-label="{aria}">'
        f"{number(product.on_hand)}</a>"
    )


def _product_row(p, labels: dict, base: str, stock_cell: Markup | None = None) -> str:
    row_url = f"{base}/{p.id}"
    if stock_cell is None:
        opening = f'<tr id="product-{p.id}" class="stock-row"'
        poll = p.poll_seconds
        if poll:
            opening += f' hx-get="{row_url}/row" hx-trigger="every {poll}s" hx-swap="outerHTML"'
        cell = f'<td class="num stock-cell">{_stock_link(p, row_url, labels, f"product-{p.id}-stock")}</td>'
    else:
        opening = f'<tr id="product-{p.id}" class="stock-row editing"'
        cell = str(stock_cell)
    name = escape(p.name)
    if not p.stock_managed:
        name += f' <span class="badge">{escape(labels["not_managed"])}</span>'
    if p.states:
        badges = "".join(_badge(s, labels) + " " for s in p.states)
    else:
        badges = f'<span class="muted">{escape(labels["no_listings"])}</span>'
    return (
        f'{opening}>\n'
        f'  <td class="select"><input type="checkbox" name="ids" value="{p.id}" form="bulk-form" class="row-select" '
        f'id="select-{p.id}" hx-preserve aria-label="{escape(labels["select"] % {"code": p.code})}"></td>\n'
        f'  <td class="code"><a href="{row_url}">{escape(p.code)}</a></td>\n'
        f'  <td class="name">{name}</td>\n'
        f'  {cell}\n'
        f'  <td class="num">{number(p.allocated)}</td>\n'
        f'  <td class="num">{number(p.sellable)}</td>\n'
        f'  <td class="badges">{badges}</td>\n'
        f'</tr>'
    )


def init_app(app) -> None:
    app.jinja_env.globals.update(sync_badge=sync_badge, stock_link=stock_link, product_row=product_row,
                                 product_rows=product_rows)
