"""紐付け: which product each listing belongs to, and what an import would change (the plan).

The rule: the mall's SKU-level code is the 商品コード, unless the row carries
`system-product-code` (商品コード) and/or `system-sell-code` (販売コード), which override. A listing that is
already linked keeps its product unless the file names one in system-product-code. Products that do not
exist are created (starting stock = the file's stock) or the listing stays unlinked, as the shop chooses.

The plan is built from plain tuples and dicts, not ORM objects: a 100,000-row file stays fast and small.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from tatenpo.listings.bulk import BulkWriter
from tatenpo.listings.records import Problems, Record
from tatenpo.models import Product, fold
from tatenpo.platform.extensions import db

encode_json = BulkWriter.json

CODE_LIMIT = 255  # Listing.code / Product.code / item_code / variant_code columns
TITLE_LIMIT = 500
_CHUNK = 900  # bound parameters per IN (…): well below every database's limit


def product_code(record: Record) -> str:
    return record.product_code or record.sell_code or record.code


def listing_code(record: Record) -> str:
    return record.sell_code or record.code


@dataclass
class Plan:
    """What the import would do, as counts for the preview and as rows for the writer."""

    new: list[tuple[Record, Optional[int], Optional[str]]] = field(default_factory=list)  # (record, product id, code to create)
    changed: list[dict[str, Any]] = field(default_factory=list)  # listing rows to update (by id)
    # Listings whose stock the mall showed is all that changed (the weekly re-import): (mall_quantity, id).
    restocked: list[tuple[int | None, int]] = field(default_factory=list)
    unchanged: int = 0
    # 商品コード → the record a product is created from: named after its title, starting with its stock.
    create: dict[str, Record] = field(default_factory=dict)
    unlinked: int = 0
    linked_existing: int = 0
    not_pushed: int = 0  # FBA and other listings imported with sync off
    relinked_ids: list[int] = field(default_factory=list)  # existing listings that got a (new) product
    rows: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)  # a few planned rows to show

    @property
    def updated(self) -> int:
        return len(self.changed) + len(self.restocked)

    def counts(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "new": len(self.new),
            "updated": self.updated,
            "unchanged": self.unchanged,
            "products_to_create": len(self.create),
            "linked_existing": self.linked_existing,
            "unlinked": self.unlinked,
            "not_pushed": self.not_pushed,
        }


def select_subset(records: Iterable[Record], items: Optional[list[str]], first_items: Optional[int]) -> Iterator[Record]:
    """まず1〜数商品で試す: only the named items (商品管理番号 / code / handle / SKU), or the first N items."""
    wanted = {i.strip().casefold() for i in items or [] if i.strip()}
    seen: set[str] = set()
    for record in records:
        if wanted:
            keys = {record.item_code.casefold(), record.code.casefold(), listing_code(record).casefold()}
            if keys & wanted:
                yield record
            continue
        if first_items:
            if record.item_code not in seen:
                if len(seen) >= first_items:
                    continue
                seen.add(record.item_code)
        yield record


def existing_listings(store_id: int) -> dict[tuple[str, str], tuple]:
    """(item_code, variant_code) → (id, product_id, code, title, mall_quantity, attributes JSON text).

    Read through the driver, the attributes as JSON text (PostgreSQL's driver would parse them): they are
    parsed only for rows whose text differs from the file's, which on a re-import is none of them."""
    bulk = BulkWriter()
    rows = bulk.select(
        "SELECT item_code, variant_code, id, product_id, code, title, mall_quantity, CAST(attributes AS TEXT) "
        "FROM listings "
        f"WHERE store_id = {bulk.marker}",
        (store_id,),
    )
    return {(r[0], r[1]): r[2:] for r in rows}


def product_ids(codes: Iterable[str]) -> dict[str, int]:
    """商品コード → product id. A code without an exact match links to the one product whose code differs only
    in case (Rakuten and Yahoo lowercase their item codes: `tt-0001` is the shop's `TT-0001`)."""
    codes = list(codes)
    bulk = BulkWriter()
    found: dict[str, int] = {}
    if len(codes) > 5000:
        # Many codes: one pass over the table (an index lookup per code costs more from Python).
        every = dict((code, id_) for id_, code in bulk.select("SELECT id, code FROM products"))
        found = {code: every[code] for code in codes if code in every}
    else:
        every = None
        for start in range(0, len(codes), _CHUNK):
            chunk = codes[start : start + _CHUNK]
            found.update((code, id_) for id_, code in db.session.execute(select(Product.id, Product.code).where(Product.code.in_(chunk))))
    missing = [code for code in codes if code not in found]
    if not missing:
        return found
    by_lower: dict[str, list[int]] = {}
    if every is not None:
        for code, id_ in every.items():
            by_lower.setdefault(code.lower(), []).append(id_)
    else:
        lowered = list({code.lower() for code in missing})
        for start in range(0, len(lowered), _CHUNK):
            chunk = lowered[start : start + _CHUNK]
            for id_, code in db.session.execute(select(Product.id, Product.code).where(func.lower(Product.code).in_(chunk))):
                by_lower.setdefault(code.lower(), []).append(id_)
    for code in missing:
        ids = by_lower.get(code.lower(), [])
        if len(ids) == 1:
            found[code] = ids[0]
    return found


def build_plan(
    store_id: int,
    records: Iterable[Record],
    problems: Problems,
    *,
    create_products: bool,
    progress=None,
    total: int = 0,
    checked: bool = False,
) -> Plan:
    """`checked`: the records already passed _checked (they are the preview's, see staging)."""
    plan = Plan()
    if checked:
        kept = list(records)
        plan.rows = len(kept)
    else:
        kept = _checked(plan, records, problems, progress, total)
    if progress is not None:
        progress("read", plan.rows, total or plan.rows)

    existing = existing_listings(store_id)
    currents = [existing.get((record.item_code, record.variant_code)) for record in kept]
    del existing
    # Products are looked up for the listings that may link to one: new listings, unlinked ones and rows that
    # name their product (system-product-code); a linked listing keeps its product (_plan_record). A weekly
    # re-import looks up none.
    known = product_ids({
        product_code(record) for record, current in zip(kept, currents)
        if current is None or current[1] is None or record.product_code
    })
    for record, current in zip(kept, currents):
        _plan_record(plan, record, current, known, create_products, store_id)
    return plan


def _checked(plan: Plan, records: Iterable[Record], problems: Problems, progress, total: int) -> list[Record]:
    """The records that can be imported: not a second row for the same listing, codes within limits."""
    kept: list[Record] = []
    first_row: dict[tuple[str, str], int] = {}
    rows = 0
    for record in records:
        rows += 1
        if progress is not None and rows % 2000 == 0:
            progress("read", rows, total)
        key = (record.item_code, record.variant_code)
        first = first_row.get(key)
        if first is not None:
            problems.add(
                record.row, "",
                _l("The same listing (%(code)s) appears twice: rows %(first)s and %(row)s.",
                   code=_identity(record), first=first, row=record.row),
                record.filename,
            )
            continue
        first_row[key] = record.row
        # Every code within its column's limit (the common case, tested at once), else the error (_valid).
        if (len(record.item_code) <= CODE_LIMIT and len(record.variant_code) <= CODE_LIMIT
                and len(record.code) <= CODE_LIMIT and len(record.product_code) <= CODE_LIMIT
                and len(record.sell_code) <= CODE_LIMIT) or _valid(record, problems):
            kept.append(record)
    plan.rows += rows
    return kept


def _identity(record: Record) -> str:
    return f"{record.item_code} / {record.variant_code}" if record.variant_code else record.item_code


def _valid(record: Record, problems: Problems) -> bool:
    if (len(record.item_code) <= CODE_LIMIT and len(record.variant_code) <= CODE_LIMIT
            and len(product_code(record)) <= CODE_LIMIT and len(listing_code(record)) <= CODE_LIMIT):
        return True
    for value, column in ((record.item_code, "item"), (record.variant_code, "variant"), (product_code(record), "code"),
                          (listing_code(record), "code")):
        if len(value) > CODE_LIMIT:
            problems.add(
                record.row, column,
                _l("The code “%(code)s…” is longer than %(limit)s characters.", code=value[:20], limit=CODE_LIMIT),
                record.filename,
            )
            return False
    return True


def _plan_record(plan: Plan, record: Record, current: Optional[tuple], known: dict[str, int], create: bool,
                 store_id: int) -> None:
    pcode = record.product_code or record.sell_code or record.code
    if len(record.title) > TITLE_LIMIT:
        record.title = record.title[:TITLE_LIMIT]
    if not record.sync_enabled:
        plan.not_pushed += 1
    if current is None:
        product_id = known.get(pcode)
        to_create = None
        if product_id is None:
            if create:
                to_create = pcode
                if pcode not in plan.create:
                    plan.create[pcode] = record
            else:
                plan.unlinked += 1
        else:
            plan.linked_existing += 1
        # The Record itself is the row to insert: no per-row dict for big files.
        plan.new.append((record, product_id, to_create))
        if len(plan.samples) < 20:
            plan.samples.append(_sample(record, pcode, "new", product_id is not None or create))
        return
    listing_id, old_product, old_code, old_title, old_quantity, old_attributes = current
    product_id = old_product
    if old_product is None or record.product_code:
        product_id = known.get(pcode, old_product if not record.product_code else None)
    new_product: Optional[str] = None
    if product_id is None:
        if create:
            new_product = pcode
            plan.create.setdefault(pcode, record)
        else:
            plan.unlinked += 1
    # What the file does not say (a subset of columns) keeps its current value.
    quantity = record.quantity if record.quantity is not None else old_quantity
    code = old_code if record.keep_code and not record.sell_code else listing_code(record)
    title = record.title or old_title
    attributes, attributes_changed = _merged_attributes(old_attributes, record.attributes, attributes_json(record))
    described = (
        product_id != old_product
        or new_product is not None
        or code != old_code
        or title != old_title
        or attributes_changed
    )
    if not described:
        if quantity == old_quantity:
            plan.unchanged += 1
            return
        # Only the stock the mall showed changed: no row of columns, the writer sets that column alone.
        plan.restocked.append((quantity, listing_id))
    else:
        row = {
            "id": listing_id,
            "product_id": product_id,
            "item_code": record.item_code,
            "variant_code": record.variant_code,
            "code": code,
            "title": title,
            "attributes": attributes,
            "mall_quantity": quantity,
            "_quantity_changed": quantity != old_quantity,
        }
        if new_product is not None:
            row["_product"] = new_product
        if (product_id is not None and product_id != old_product) or new_product is not None:
            plan.relinked_ids.append(listing_id)
        plan.changed.append(row)
    if len(plan.samples) < 20:
        plan.samples.append(_sample(record, pcode, "updated", product_id is not None or create))


def listing_search_text(record: Record, titles: dict[str, str]) -> str:
    """The search text of the listing the record creates: models.search_key(code, item, variant, title).
    `titles` caches folded titles (fold_title): a product's SKUs share one."""
    # search_key(code, item, variant): the same text, without a generator per record.
    codes = fold(" ".join(filter(None, (record.sell_code or record.code, record.item_code, record.variant_code))))
    folded = folded_title(record, titles)
    return (f"{codes} {folded}" if folded else codes)[:1100]


def product_search_text(record: Record, titles: dict[str, str]) -> str:
    """The search text of the product the record creates: models.search_key(code, name)."""
    return f"{fold(product_code(record))} {folded_title(record, titles)}".strip()[:800]


def folded_title(record: Record, titles: dict[str, str]) -> str:
    """The record's title folded, worked out once: a new listing's search text and its new product's both
    contain it."""
    if record.folded_title is None:
        record.folded_title = fold_title(record.title[:TITLE_LIMIT], titles)
    return record.folded_title


def fold_title(title: str, titles: dict[str, str]) -> str:
    """models.fold(title), its part before the last space folded once for all the titles that share it (the
    SKUs of one product: 「Tシャツ① 赤」, 「Tシャツ① 青」). Folding the parts on either side of a space gives the
    same text as folding them joined (models.search_key)."""
    head, space, tail = title.rpartition(" ")
    if not space:
        return fold(title)
    folded = titles.get(head)
    if folded is None:
        folded = titles[head] = fold(head)
    return f"{folded} {fold(tail)}"


def attributes_json(record: Record) -> str:
    """The record's attributes as the JSON text stored, worked out once (the preview's plan, the import's
    plan and the writer all need it; staging keeps it)."""
    if record.attributes_json is None:
        record.attributes_json = encode_json(record.attributes)
    return record.attributes_json


def _merged_attributes(old: Any, new: dict[str, Any], new_json: str) -> tuple[dict[str, Any], bool]:
    """The stored attributes with the file's on top, and whether that changes them. `old` is JSON text
    (SQLite) or already parsed (PostgreSQL); identical text needs no parsing."""
    if isinstance(old, str):
        if old == new_json:
            return new, False
        old = json.loads(old) if old else {}
    old = old or {}
    merged = {**old, **new}
    return merged, merged != old


def _sample(record: Record, pcode: str, state: str, linked: bool) -> dict[str, Any]:
    return {
        "row": record.row,
        "item_code": record.item_code,
        "variant_code": record.variant_code,
        "code": listing_code(record),
        "product_code": pcode if linked else "",
        "title": record.title[:80],
        "quantity": record.quantity,
        "state": state,
    }
