"""Each sandbox store's listing file, in its mall's real download format and encoding (step 3 of the flow).

Rakuten normal-item.csv (CP932, CRLF, a product row then its SKU rows); Yahoo quantity.csv and data.csv
(CP932); Amazon listings report (tab-separated, Japanese headers, CP932); Shopify products CSV (UTF-8).
"""
from __future__ import annotations

import csv
import io
from itertools import groupby

# (file kind, download name) per mall; the first is the default.
FILES = {
    "rakuten": [("normal-item", "normal-item.csv")],
    "rakuten-ftp": [("normal-item", "normal-item.csv")],
    "yahoo": [("quantity", "quantity.csv"), ("data", "data.csv")],
    "amazon": [("report", "All_Listings_Report.txt")],
    "shopify": [("products", "products_export.csv")],
}

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


def files(mall: str) -> list[tuple[str, str]]:
    return FILES[mall]


def render(store: dict, items: list[dict], kind: str = "") -> tuple[str, str, bytes]:
    """(download name, content type, bytes) of the store's listing file `kind` (default: the mall's main one)."""
    mall = store["mall"]
    choices = dict(FILES[mall])
    kind = kind or FILES[mall][0][0]
    if kind not in choices:
        raise ValueError(f"file must be one of {', '.join(choices)} for {mall}.")
    groups = [list(g) for _, g in groupby(items, key=lambda i: i["extra"].get("group", i["code"]))]
    if mall in ("rakuten", "rakuten-ftp"):
        rows = _rakuten(groups)
        return choices[kind], "text/csv; charset=Shift_JIS", _encode(RAKUTEN_HEADERS, rows, "cp932")
    if mall == "yahoo" and kind == "quantity":
        rows = [[i["code"], i["name"], i["variant"], i["quantity"], 0, 0] for i in items]
        return choices[kind], "text/csv; charset=Shift_JIS", _encode(YAHOO_QUANTITY_HEADERS, rows, "cp932")
    if mall == "yahoo":
        return choices[kind], "text/csv; charset=Shift_JIS", _encode(YAHOO_DATA_HEADERS, _yahoo_data(groups), "cp932")
    if mall == "amazon":
        rows = [[i["name"] + (f" {i['option_value']}" if i["option_value"] else ""), f"LST{i['id']:08d}", i["code"],
                 i["price"], i["quantity"], "2026/01/05 10:00:00 JST", "4", "", "11", f"B0{i['id']:08d}",
                 f"B0{i['id']:08d}", "DEFAULT"] for i in items]
        return choices[kind], "text/tab-separated-values; charset=Shift_JIS", _encode(AMAZON_HEADERS, rows, "cp932", "\t")
    return choices[kind], "text/csv; charset=utf-8", _encode(SHOPIFY_HEADERS, _shopify(groups), "utf-8")


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
