"""Generated catalogs for sandbox stores: Japanese names (with CP932-only characters such as ①, ㈱, 髙, ～ so
the CSVs exercise the real encoding), some items with variations. Item i has the same SKU codes on every mall
(TT-0001, TT-0002-S, …), so the demo stores' listings link to the same products across malls. 楽天 items also
carry a 商品番号 (extra["item_number"]), which differs from the 商品管理番号 for some items."""
from __future__ import annotations

import random
from typing import Any

GOODS = [
    "有田焼 マグカップ", "今治タオル フェイスタオル", "南部鉄器 急須", "信楽焼 小皿", "京友禅 ハンカチ",
    "髙橋工房 木製トレイ", "㈱山田製作所 ステンレスボトル", "美濃焼 茶碗", "津軽塗 箸", "博多織 名刺入れ",
    "会津木綿 トートバッグ", "江戸切子 グラス①", "甲州印伝 小銭入れ", "備前焼 花入れ", "輪島塗 椀～特選～",
    "九谷焼 豆皿", "箱根寄木細工 秘密箱", "越前和紙 便箋", "琉球ガラス タンブラー", "久留米絣 エプロン",
]
VARIATIONS = [
    ("サイズ", [("S", "S"), ("M", "M"), ("L", "L")]),
    ("カラー", [("red", "赤"), ("blue", "青")]),
]


def generate(mall: str, store_id: int, count: int, seed: int = 0) -> list[dict[str, Any]]:
    """Items as the sandbox stores them: per SKU, with the mall's identity in code/variant."""
    from .malls import mall as sandbox_mall  # the mall modules import this one

    rng = random.Random(f"{mall}-{store_id}-{seed}")
    rows: list[dict[str, Any]] = []
    for i in range(1, count + 1):
        base = f"TT-{i:04d}"
        name = GOODS[(i - 1) % len(GOODS)] + ("" if i <= len(GOODS) else f" {(i - 1) // len(GOODS) + 1}号")
        price = 500 + (i * 370) % 9500
        skus: list[tuple[str, str, str]] = []  # (sku, option_name, option_value)
        option_name = ""
        if i % 4 == 2:  # every fourth item has variations
            option_name, choices = VARIATIONS[(i // 4) % len(VARIATIONS)]
            skus = [(f"{base}-{key.upper()}", option_name, label) for key, label in choices]
        else:
            skus = [(base, "", "")]
        for n, (sku, opt, value) in enumerate(skus, start=1):
            row: dict[str, Any] = {
                "sku": sku, "name": name, "option_name": opt, "option_value": value,
                "price": price, "quantity": rng.randint(0, 30),
                "extra": {"group": base.lower(), "position": n},
            }
            identity = sandbox_mall(mall).identity(store_id, i, n, base, sku, opt)
            row["extra"].update(identity.pop("extra", {}))
            row.update(identity)
            rows.append(row)
    return rows


def rakuten_identity(store_id: int, i: int, n: int, base: str, sku: str, opt: str) -> dict[str, Any]:
    """楽天 (API and FTP alike): 商品管理番号 lowercase, SKU管理番号 'normal-inventory' for a single-SKU item."""
    variant = "normal-inventory" if not opt else sku.rsplit("-", 1)[1].lower()
    return {"code": base.lower(), "variant": variant, "extra": {"item_number": item_number(i, base)}}


def item_number(i: int, base: str) -> str:
    """楽天 商品番号 (itemNumber), printed in order mails and the listing CSV: most shops leave it as the
    商品管理番号, but every third item here carries the shop's own uppercase code with a maker prefix, so the
    two differ as they do in real shops."""
    return f"KG-{base}" if i % 3 == 0 else base.lower()


def location_id(store_id: int) -> str:
    return f"gid://shopify/Location/{store_id * 100 + 1}"
