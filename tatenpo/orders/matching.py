"""Which listing an order line is: the item the mall printed on the order, found among the store's listings.

What malls print (docs/malls/order-mails.md): 楽天 prints 商品番号 (which can differ from 商品管理番号), then
SKU管理番号 — or, in older mails, only the 項目・選択肢 (カラー:ブルー); Yahoo code and sub-code; Amazon and
Shopify the merchant SKU. A listing keeps that printed code as `order_code` (its 商品番号 or SKU from the
listing file, else its item code), filled in lazily here for listings that have none yet.
"""
from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from typing import Optional, Protocol

from sqlalchemy import func, or_, select, update

from tatenpo.models import Listing
from tatenpo.platform.extensions import db

# The code an order prints for a listing's item: its 商品番号 (楽天), its merchant SKU (Shopify), else the
# mall's item code (Yahoo code, Amazon seller-sku, 楽天 商品管理番号).
ORDER_CODE = func.coalesce(
    func.nullif(Listing.attributes["item_number"].as_string(), ""),
    func.nullif(Listing.attributes["sku"].as_string(), ""),
    Listing.item_code,
)


class PrintedItem(Protocol):
    """An order line as the mall printed it."""

    item_code: str
    variant_code: str
    choices: Sequence[tuple[str, str]] | str


def fill_order_codes(store_id: int) -> int:
    """Give the store's listings that have none their order code (new or re-imported listings)."""
    result = db.session.execute(
        update(Listing)
        .where(Listing.store_id == store_id, Listing.order_code == "")
        .values(order_code=ORDER_CODE)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def match(store_id: int, item: PrintedItem) -> Optional[Listing]:
    """The store's listing the printed item is, or None (未紐付け): by code, then SKU, then choices."""
    code = (item.item_code or "").strip()
    if not code:
        return None
    candidates = list(db.session.scalars(
        select(Listing).where(
            Listing.store_id == store_id,
            or_(Listing.order_code == code, Listing.item_code == code, Listing.item_code == code.lower(),
                Listing.code == code),
        ).order_by(Listing.id)
    ))
    return choose(candidates, item)


def choose(candidates: Sequence[Listing], item: PrintedItem) -> Optional[Listing]:
    """The one candidate the printed SKU or choices name; a lone candidate when the order names neither."""
    variant = (item.variant_code or "").strip()
    if variant:
        exact = [c for c in candidates if c.variant_code == variant or (c.attributes or {}).get("system_sku") == variant]
        return exact[0] if len(exact) == 1 else None
    wanted = _values(item.choices)
    if wanted:
        chosen = [c for c in candidates if _listing_values(c) == wanted]
        return chosen[0] if len(chosen) == 1 else None
    return candidates[0] if len(candidates) == 1 else None


def choices_text(choices: Sequence[tuple[str, str]] | str) -> str:
    """The 項目・選択肢 as one line for the order page and the database (カラー:ブルー / サイズ:M)."""
    if isinstance(choices, str):
        return choices
    return " / ".join(f"{name}:{value}" for name, value in choices)


def _values(choices: Sequence[tuple[str, str]] | str) -> frozenset[str]:
    if isinstance(choices, str):
        pairs = [part.partition(":") for part in choices.split(" / ") if part.strip()]
        return frozenset(_norm(value) for _name, _sep, value in pairs if _norm(value))
    return frozenset(_norm(value) for _name, value in choices if _norm(value))


def _listing_values(listing: Listing) -> frozenset[str]:
    """The choice values a listing was imported with: the SKU format's バリエーション選択肢, or the legacy
    select.csv's 横軸/縦軸 choice names."""
    attributes = listing.attributes or {}
    values: Iterable[str] = attributes.get("choices") or [attributes.get("horizontal") or "",
                                                          attributes.get("vertical") or ""]
    return frozenset(_norm(value) for value in values if _norm(value))


def _norm(text: str) -> str:
    # Mails and files differ in width and stray spaces (real select.csv choices carry a leading space).
    return unicodedata.normalize("NFKC", text or "").strip().casefold()
