"""Each sandbox store's listing file, in its mall's real download format and encoding (step 3 of the flow).

Rakuten normal-item.csv (CP932, CRLF, a product row then its SKU rows); Yahoo quantity.csv and data.csv
(CP932); Amazon listings report (tab-separated, Japanese headers, CP932); Shopify products CSV (UTF-8), in
today's layout and the older one. Each mall module lists its files (sandbox.malls.ListingFile).
"""
from __future__ import annotations

import csv
import io
from itertools import groupby

RAKUTEN_HEADERS = [
    "商品管理番号（商品URL）", "商品番号", "商品名", "バリエーション項目キー定義", "バリエーション項目名定義",
    "バリエーション1選択肢定義", "SKU管理番号", "システム連携用SKU番号", "バリエーション項目キー1",
    "バリエーション項目選択肢1", "販売価格", "在庫数",
]
YAHOO_QUANTITY_HEADERS = ["code", "name", "sub-code", "quantity", "allow-overdraft", "stock-close"]
YAHOO_DATA_HEADERS = ["path", "name", "code", "sub-code", "original-price", "price", "options", "headline"]
# [inferred] the Japanese headers of a Japan-marketplace listings report.
AMAZON_HEADERS = ["商品名", "出品ID", "出品者SKU", "価格", "数量", "出品日", "商品IDタイプ", "コンディション説明",
                  "コンディション", "ASIN1", "商品ID", "フルフィルメント・チャンネル"]
SHOPIFY_HEADERS = ["Handle", "Title", "Body (HTML)", "Vendor", "Product Category", "Type", "Tags", "Published",
                   "Option1 Name", "Option1 Value", "Variant SKU", "Variant Grams", "Variant Inventory Tracker",
                   "Variant Inventory Qty", "Variant Inventory Policy", "Variant Fulfillment Service",
                   "Variant Price", "Status"]


# [Shopify help: "Using CSV files to import and export products", help.shopify.com/en/manual/products/import-export/
# using-csv] Today's export names its columns URL handle, SKU, Option1 name / value, Price, Inventory quantity;
# exports made before the 2024 change (still in shops' hands) used Handle, Variant SKU, Variant Inventory Qty.
SHOPIFY_CURRENT_HEADERS = ["Title", "URL handle", "Description", "Vendor", "Product category", "Type", "Tags",
                           "Published on online store", "Status", "SKU", "Option1 name", "Option1 value", "Price",
                           "Inventory tracker", "Inventory quantity", "Continue selling when out of stock",
                           "Weight value (grams)", "Fulfillment service"]


def files(mall: str) -> list[tuple[str, str]]:
    """(file kind, download name) of each listing file the mall offers; the first is the default."""
    from .malls import mall as sandbox_mall  # the mall modules import this one

    return [(f.kind, f.filename) for f in sandbox_mall(mall).files]


def render(store: dict, items: list[dict], kind: str = "") -> tuple[str, str, bytes]:
    """(download name, content type, bytes) of the store's listing file `kind` (default: the mall's main one)."""
    from .malls import mall as sandbox_mall

    offered = sandbox_mall(store["mall"]).files
    chosen = next((f for f in offered if f.kind == kind), None) if kind else offered[0]
    if chosen is None:
        raise ValueError(f"file must be one of {', '.join(f.kind for f in offered)} for {store['mall']}.")
    groups = [list(g) for _, g in groupby(items, key=lambda i: i["extra"].get("group", i["code"]))]
    content_type, data = chosen.render(store, items, groups)
    return chosen.filename, content_type, data


def rakuten_normal_item(store: dict, items: list[dict], groups: list[list[dict]]) -> tuple[str, bytes]:
    return "text/csv; charset=Shift_JIS", _encode(RAKUTEN_HEADERS, _rakuten(groups), "cp932")


def yahoo_quantity(store: dict, items: list[dict], groups: list[list[dict]]) -> tuple[str, bytes]:
    rows = [[i["code"], i["name"], i["variant"], i["quantity"], 0, 0] for i in items]
    return "text/csv; charset=Shift_JIS", _encode(YAHOO_QUANTITY_HEADERS, rows, "cp932")


def yahoo_data(store: dict, items: list[dict], groups: list[list[dict]]) -> tuple[str, bytes]:
    return "text/csv; charset=Shift_JIS", _encode(YAHOO_DATA_HEADERS, _yahoo_data(groups), "cp932")


def amazon_report(store: dict, items: list[dict], groups: list[list[dict]]) -> tuple[str, bytes]:
    rows = [[i["name"] + (f" {i['option_value']}" if i["option_value"] else ""), f"LST{i['id']:08d}", i["code"],
             i["price"], i["quantity"], "2026/01/05 10:00:00 JST", "4", "", "11", f"B0{i['id']:08d}",
             f"B0{i['id']:08d}", "DEFAULT"] for i in items]
    return "text/tab-separated-values; charset=Shift_JIS", _encode(AMAZON_HEADERS, rows, "cp932", "\t")


def shopify_products(store: dict, items: list[dict], groups: list[list[dict]]) -> tuple[str, bytes]:
    """The products export as shops made it before 2024 (Handle, Variant SKU, Variant Inventory Qty)."""
    return "text/csv; charset=utf-8", _encode(SHOPIFY_HEADERS, _shopify(groups), "utf-8")


def shopify_products_current(store: dict, items: list[dict], groups: list[list[dict]]) -> tuple[str, bytes]:
    """Today's products export (URL handle, SKU, Option1 name / value, Inventory quantity)."""
    rows = []
    for group in groups:
        for n, item in enumerate(group):
            head = n == 0
            rows.append([
                item["name"] if head else "", item["extra"].get("handle", ""), "", "Tatenpo Sandbox" if head else "",
                "", "", "", "TRUE" if head else "", "Active" if head else "", item["sku"],
                (item["option_name"] or "Title") if head else "", item["option_value"] or "Default Title",
                item["price"], "shopify", item["quantity"], "FALSE", 0, "manual",
            ])
    return "text/csv; charset=utf-8", _encode(SHOPIFY_CURRENT_HEADERS, rows, "utf-8")


def _encode(headers: list[str], rows: list[list], encoding: str, delimiter: str = ",") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def _rakuten(groups: list[list[dict]]) -> list[list]:
    rows = []
    for group in groups:
        first = group[0]
        option = first["option_name"]
        keys = "|".join(i["variant"] for i in group) if option else ""
        # 商品番号 is the shop's own code, printed in order mails; stores made before it existed show the 商品管理番号.
        rows.append([first["code"], first["extra"].get("item_number") or first["code"], first["name"], keys, option,
                     "|".join(i["option_value"] for i in group) if option else "", "", "", "", "", "", ""])
        for item in group:
            rows.append([item["code"], "", "", "", "", "", item["variant"], item["sku"],
                         item["variant"] if option else "", item["option_value"], item["price"], item["quantity"]])
    return rows


def _yahoo_data(groups: list[list[dict]]) -> list[list]:
    rows = []
    for group in groups:
        first = group[0]
        option = first["option_name"]
        sub = "&".join(f"{option}:{i['option_value']}={i['variant']}" for i in group) if option else ""
        options = f"{option} " + " ".join(i["option_value"] for i in group) if option else ""
        rows.append(["sandbox", first["name"], first["code"], sub, "", first["price"], options, ""])
    return rows


def _shopify(groups: list[list[dict]]) -> list[list]:
    rows = []
    for group in groups:
        for n, item in enumerate(group):
            head = n == 0
            option = item["option_name"]
            rows.append([
                item["extra"].get("handle", ""), item["name"] if head else "", "" , "Tatenpo Sandbox" if head else "",
                "", "", "", "TRUE" if head else "", (option or "Title") if head else "",
                item["option_value"] or "Default Title", item["sku"], 0, "shopify", item["quantity"], "deny",
                "manual", item["price"], "active" if head else "",
            ])
    return rows
