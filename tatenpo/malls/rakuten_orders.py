"""楽天 RMS 受注API (楽天ペイ) for RakutenConnector.read_orders (tatenpo.malls.order_reading), with the Inventory
API's ESA credentials. Sources: docs/malls/rakuten.md, "Orders API".

- searchOrder finds order numbers by a date (dateType 1 注文日: the API has no "last changed" date), in windows
  of at most 63 days, 1000 per page: the new orders since the cursor. The orders Tatenpo still holds as
  received (`open_numbers`) are read again by number, so their shipping or cancellation is seen too.
- getOrder reads ≤ 100 numbers per call (version 7: the SKU fields) → packages → items → SKU models.
- Errors come in MessageModelList with HTTP 200 (messageType ERROR): raised as MallError with RMS's message.
- orderProgress 100–400 received; 500 発送済, 600/700 (payment steps after shipping) shipped; 800 キャンセル確定待ち
  and 900 キャンセル確定 cancelled.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from flask_babel import gettext as _

from tatenpo.malls.base import HINT_APPLICATION, MallError
from tatenpo.malls.http import Pace
from tatenpo.malls.order_reading import JST, aware_utc, chunks, parse_time
from tatenpo.models import OrderStatus, utcnow
from tatenpo.orders.mall_orders import MallOrder, MallOrderLine

if TYPE_CHECKING:
    from tatenpo.malls.rakuten import RakutenConnector

MAX_DAYS = 63
PAGE_SIZE = 1000
GET_BATCH = 100
VERSION = 7  # the version with SkuModelList (SKU管理番号) since the SKU migration
RATE = 1.0  # [inferred] RMS publishes no figure for the 受注API: the Inventory API's 1 request/s
PROGRESS = {100: "注文確認待ち", 200: "楽天処理中", 300: "発送待ち", 400: "変更確定待ち", 500: "発送済",
            600: "支払手続き中", 700: "支払手続き済", 800: "キャンセル確定待ち", 900: "キャンセル確定"}


def status_of(progress: int) -> OrderStatus:
    if progress >= 800:
        return OrderStatus.CANCELLED
    if progress >= 500:
        return OrderStatus.SHIPPED
    return OrderStatus.RECEIVED


def read(connector: "RakutenConnector", since: datetime, *, open_numbers: Sequence[str] = (),
         known: Collection[str] = ()) -> list[MallOrder]:
    missing = connector._missing_credentials()
    if missing:
        raise missing
    base = connector.base.removesuffix("/inventories") + "/order"
    account = connector.upsert_pace.key.removesuffix(":bulk-upsert")
    search_pace, get_pace = Pace(account + ":searchOrder", RATE), Pace(account + ":getOrder", RATE)
    numbers = list(dict.fromkeys([*_search(connector, base, search_pace, since), *open_numbers]))
    orders: list[MallOrder] = []
    for chunk in chunks(numbers, GET_BATCH):
        body = _post(connector, base + "/getOrder", get_pace, {"orderNumberList": chunk, "version": VERSION})
        orders += [_order(model) for model in body.get("OrderModelList") or []]
    return orders


def _search(connector, base: str, pace: Pace, since: datetime) -> list[str]:
    end = aware_utc(utcnow()).astimezone(JST)
    start = max(aware_utc(since).astimezone(JST), end - timedelta(days=MAX_DAYS) + timedelta(minutes=1))
    numbers: list[str] = []
    if start >= end:
        return numbers  # a cursor ahead of this clock: nothing new to search
    page, pages = 1, 1
    while page <= pages:
        body = _post(connector, base + "/searchOrder", pace, {
            "dateType": 1, "startDatetime": _rms_time(start), "endDatetime": _rms_time(end),
            "PaginationRequestModel": {"requestRecordsAmount": PAGE_SIZE, "requestPage": page,
                                       "SortModelList": [{"sortColumn": 1, "sortDirection": 1}]},
        })
        numbers += [str(n) for n in body.get("orderNumberList") or []]
        pages = int((body.get("PaginationResponseModel") or {}).get("totalPages") or 1)
        page += 1
    return numbers


def _rms_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S+0900")


def _post(connector, url: str, pace: Pace, body: dict) -> dict:
    response = connector.http.call("POST", url, json=body, pace=pace,
                                   classify=lambda answer: _classify(connector, answer))
    try:
        data = response.json()
    except ValueError as exc:
        raise MallError(_("%(mall)s sent an answer Tatenpo cannot read.", mall="楽天RMS"), transient=True,
                        code="bad-response") from exc
    errors = [m for m in data.get("MessageModelList") or [] if m.get("messageType") == "ERROR"]
    if errors or response.status_code != 200:
        detail = "; ".join(f"{m.get('messageCode')}: {m.get('message')}" for m in errors) or response.text[:200]
        raise MallError(_("RMS refused the order request: %(detail)s", detail=detail), transient=False,
                        code=(errors[0].get("messageCode") if errors else f"http-{response.status_code}"))
    return data


def _classify(connector, response):
    if response.status_code == 403:
        return MallError(_("RMS does not allow this shop to use the order API. Enable 受注API (楽天ペイ受注API) for "
                           "the shop in RMS › WEB APIサービス."), transient=False, hint=HINT_APPLICATION,
                         code="http-403")
    return connector._classify(response)


def _order(model: dict) -> MallOrder:
    progress = int(model.get("orderProgress") or 100)
    lines = []
    for package in model.get("PackageModelList") or []:
        for item in package.get("ItemModelList") or []:
            skus = item.get("SkuModelList") or [{}]
            variant = skus[0].get("variantId") or skus[0].get("merchantDefinedSkuId") or ""
            choices = " / ".join(part.strip() for part in str(item.get("selectedChoice") or "").splitlines()
                                 if part.strip())
            lines.append(MallOrderLine(
                item_code=str(item.get("manageNumber") or item.get("itemNumber") or ""), variant_code=str(variant),
                quantity=int(item.get("units") or 0), title=str(item.get("itemName") or ""), choices=choices,
                unit_price=int(item["price"]) if item.get("price") is not None else None))
    return MallOrder(number=str(model["orderNumber"]), status=status_of(progress),
                     mall_status=f"{progress} {PROGRESS.get(progress, '')}".strip(),
                     lines=tuple(line for line in lines if line.quantity > 0),
                     ordered_at=parse_time(model.get("orderDatetime")), updated_at=None)
