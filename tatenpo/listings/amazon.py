"""Amazon.co.jp listings report (All Listings / Open Listings): tab-separated, English headers
(`seller-sku`, `item-name`, `quantity`, `fulfillment-channel`, …) or, for Japan, Japanese ones (出品者SKU, 商品名,
数量, フルフィルメント・チャネル, …). FBA listings (fulfillment channel AMAZON_JP) are imported but never pushed:
Amazon holds their stock.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask_babel import lazy_gettext as _l

from tatenpo.listings.base import Format, Overrides
from tatenpo.listings.reading import Columns, Table, cell
from tatenpo.listings.records import Problems, Record, read_quantity

SKU = ("seller-sku", "出品者SKU", "出品者ＳＫＵ", "SKU")
NAME = ("item-name", "商品名")
QUANTITY = ("quantity", "数量", "在庫数")
CHANNEL = ("fulfillment-channel", "フルフィルメント・チャネル", "フルフィルメント・チャンネル", "フルフィルメントチャネル",
           "フルフィルメントチャンネル", "出荷元")
ASIN = ("asin1", "ASIN 1", "ASIN1", "asin")
LISTING_ID = ("listing-id", "出品ID")


def matches(columns: Columns, settings: dict[str, Any]) -> bool:
    return columns.has(*SKU[:3]) and columns.has(*NAME, *QUANTITY, *ASIN, *LISTING_ID)


def read(tables: list[Table], problems: Problems, settings: dict[str, Any]) -> Iterator[Record]:
    for table in tables:
        c = table.columns
        i_sku = c.require(*SKU)
        i_name = c.find(*NAME)
        i_quantity = c.find(*QUANTITY)
        i_channel = c.find(*CHANNEL)
        i_asin = c.find(*ASIN)
        i_listing = c.find(*LISTING_ID)
        overrides = Overrides(c)
        read_columns = [i_sku, i_name, i_quantity, i_channel, i_asin, i_listing, overrides.product, overrides.sell]
        for row_no, row in table.rows(columns=read_columns):
            sku = cell(row, i_sku).strip()
            if not sku:
                problems.add(row_no, c.name(i_sku), _l("The seller SKU is empty."), table.filename)
                continue
            channel = cell(row, i_channel).strip()
            fba = channel.upper().startswith("AMAZON")
            attributes: dict[str, Any] = {}
            if cell(row, i_asin).strip():
                attributes["asin"] = cell(row, i_asin).strip()
            if cell(row, i_listing).strip():
                attributes["listing_id"] = cell(row, i_listing).strip()
            if channel:
                attributes["fulfillment_channel"] = channel
            quantity = None
            if not fba:  # an FBA row's quantity is empty or Amazon's own count, never ours
                quantity = read_quantity(cell(row, i_quantity), row_no, c.name(i_quantity), problems, table.filename)
            record = Record(
                row=row_no,
                item_code=sku,
                variant_code="",
                code=sku,
                title=cell(row, i_name),
                quantity=quantity,
                attributes=attributes,
                sync_enabled=not fba,
                filename=table.filename,
            )
            yield overrides.apply(record, row)


FORMAT = Format(
    name="amazon",
    label=_l("Amazon listings report (tab-separated)"),
    malls=("amazon",),
    matches=matches,
    read=read,
)
