"""`flask stock set|show`: one product's stock from the shell."""
from __future__ import annotations

import click
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from .. import inventory
from ..extensions import db
from ..models import Listing, Product, StockChangeKind, SyncEntry
from . import emit, fail


def find_product(code: str) -> Product:
    product = db.session.scalar(select(Product).where(Product.code == code))
    if product is None:
        fail(f"no product with 商品コード {code!r}")
    return product


def product_state(product: Product) -> dict:
    listings = db.session.scalars(
        select(Listing).options(joinedload(Listing.store)).where(Listing.product_id == product.id).order_by(Listing.id)
    ).all()
    entries = {
        e.listing_id: e
        for e in db.session.scalars(select(SyncEntry).where(SyncEntry.listing_id.in_([l.id for l in listings])))
    }
    return {
        "code": product.code,
        "name": product.name,
        "on_hand": product.on_hand,
        "allocated": product.allocated,
        "sellable": product.sellable,
        "stock_managed": product.stock_managed,
        "listings": [
            {
                "store_id": l.store_id,
                "store": l.store.name,
                "mall": l.store.mall,
                "code": l.code,
                "item_code": l.item_code,
                "variant_code": l.variant_code,
                "target_quantity": inventory.pushed_quantity(l, product, l.store),
                "pending": l.id in entries,
                "pending_quantity": entries[l.id].target_quantity if l.id in entries else None,
                "last_pushed_quantity": l.last_pushed_quantity,
                "last_pushed_at": l.last_pushed_at,
                "mall_quantity": l.mall_quantity,
                "reflected": l.reflected,
            }
            for l in listings
        ],
    }


def register(app) -> None:
    @app.cli.group("stock")
    def group() -> None:
        """Products' stock (在庫)."""

    @group.command("set")
    @click.argument("product_code")
    @click.argument("quantity")
    @click.option("--note", default=None)
    def set_(product_code: str, quantity: str, note: str | None) -> None:
        """Set 在庫数 of a product; its listings are scheduled for sync."""
        product = find_product(product_code)
        try:
            entry = inventory.set_stock(product, quantity, kind=StockChangeKind.MANUAL, note=note)
        except inventory.StockError as exc:
            db.session.rollback()
            fail(exc.message)
        db.session.commit()
        click.echo(f"{product_code}: {entry.quantity_after - entry.change} → {entry.quantity_after}")

    @group.command("show")
    @click.argument("product_code")
    @click.option("--json", "as_json", is_flag=True)
    def show(product_code: str, as_json: bool) -> None:
        """Show on hand, allocated, sellable and each listing's sync state."""
        state = product_state(find_product(product_code))
        if as_json:
            emit(state, True)
            return
        click.echo(f"{state['code']}  {state['name']}")
        click.echo(f"在庫数 {state['on_hand']:,}  引当数 {state['allocated']:,}  販売可能数 {state['sellable']:,}")
        for l in state["listings"]:
            pending = f"同期待ち {l['pending_quantity']}" if l["pending"] else "同期済み"
            click.echo(f"  [{l['store']}] {l['code']}  {pending}  最終送信 {l['last_pushed_quantity']}")
