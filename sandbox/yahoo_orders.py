"""Yahoo!ショッピング 注文API at /yahoo/ShoppingWebService/V1/orderList and …/orderInfo (real paths): XML requests
(`<Req>` with `<SellerId>`) under the same Bearer token as setStock; 1 request/s per URL. Sources:
docs/malls/yahoo.md, "Orders API".

orderList: `<Search><Result>` (1–2000 per page) `<Start>` `<Condition><UpdateTimeFrom>/<UpdateTimeTo>`
(YYYYMMDDHHMMSS, JST) `<Field>` → `<Result><Search><TotalCount>` and one `<OrderInfo>` per order.
orderInfo: `<Target><OrderId>` `<Field>` → `<ResultSet><Result><Status>OK</Status><OrderInfo>` with OrderStatus
(1 予約中, 2 処理中, 3 保留, 4 キャンセル, 5 完了), `<Ship><ShipStatus>` and one `<Item>` per line.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from typing import Optional
from xml.sax.saxutils import escape

from flask import Blueprint, Response, request

from .common import arrived, fault_reply, limiter, record, state
from .yahoo import REPLIES, _error, _throttled, _xml

bp = Blueprint("yahoo_orders", __name__, url_prefix="/yahoo/ShoppingWebService/V1")

MAX_RESULTS = 2000
TIME = "%Y%m%d%H%M%S"
JST = timezone(timedelta(hours=9))
# ShipStatus: 0 出荷不可, 1 出荷可, 2 出荷処理中, 3 出荷完了, 4 着荷完了.
SHIP_STATUS = {"ordered": "1", "shipped": "3", "cancelled": "0"}


def _begin(api: str) -> tuple[Optional[dict], Optional[ET.Element], Optional[Response]]:
    """(store, the request's <Req>, failure): the token, faults, the seller ID in the body, the rate limit."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    store, issued = state().store_for_token("yahoo", token) if scheme == "Bearer" and token else (None, False)
    if store is None:
        return None, None, REPLIES.auth_wrong()
    failure = fault_reply(store, REPLIES, refreshed_token=not issued)
    if failure is not None:
        return store, None, failure
    try:
        root = ET.fromstring(request.get_data())
    except ET.ParseError:
        return store, None, _error("The request is not valid XML.", "od-00001")  # [inferred] code
    if (root.findtext("SellerId") or "").strip() != store["credentials"]["seller_id"]:
        return store, None, _error("SellerId is invalid.", "st-02100")  # [inferred] code
    allowed, wait = limiter().allow(store["id"], "yahoo", api, arrived())
    if not allowed:
        return store, None, _throttled(wait)
    return store, root, None


def _jst(order: dict, key: str) -> datetime:
    if key == "updated":
        return datetime.fromtimestamp(order["updated"], JST)
    return datetime.fromisoformat(order["ordered_at"])


@bp.post("/orderList")
def order_list():
    store, root, failure = _begin("orderList")
    if failure is not None:
        return record(store, "orderList", failure)
    search = root.find("Search")
    if search is None:
        return record(store, "orderList", _error("Search is required.", "od-00002"))
    try:
        size = int(search.findtext("Result") or 10)
        start = int(search.findtext("Start") or 1)
        since = _parse(search.findtext("Condition/UpdateTimeFrom"))
        until = _parse(search.findtext("Condition/UpdateTimeTo"))
    except ValueError:
        return record(store, "orderList", _error("Result, Start, UpdateTimeFrom or UpdateTimeTo is invalid.",
                                                 "od-00003"))
    if not 1 <= size <= MAX_RESULTS or start < 1:
        return record(store, "orderList", _error(f"Result must be 1 to {MAX_RESULTS}.", "od-00003"))
    orders = [o for o in state().orders(store["id"])
              if (since is None or _jst(o, "updated") >= since) and (until is None or _jst(o, "updated") <= until)]
    orders.sort(key=lambda o: (o["updated"], o["number"]))
    page = orders[start - 1:start - 1 + size]
    infos = "".join(
        f"<OrderInfo><Index>{start + n}</Index><OrderId>{escape(o['number'])}</OrderId><Version>1</Version>"
        f"<OrderTime>{_jst(o, 'ordered').isoformat()}</OrderTime>"
        f"<OrderStatus>{o['mall_status'] or '2'}</OrderStatus><ShipStatus>{SHIP_STATUS[o['status']]}</ShipStatus>"
        f"<UpdateTime>{_jst(o, 'updated').strftime(TIME)}</UpdateTime></OrderInfo>"
        for n, o in enumerate(page))
    return record(store, "orderList", _xml(
        f"<Result><Status>OK</Status><Search><TotalCount>{len(orders)}</TotalCount>{infos}</Search></Result>"))


@bp.post("/orderInfo")
def order_info():
    store, root, failure = _begin("orderInfo")
    if failure is not None:
        return record(store, "orderInfo", failure)
    number = (root.findtext("Target/OrderId") or "").strip()
    if not number:
        return record(store, "orderInfo", _error("OrderId is required.", "od-00004"))
    found = state().orders_by_number(store["id"], [number])
    if not found:
        return record(store, "orderInfo", _error(f"OrderId({number}) is not found.", "od-00005", 404))
    order = found[0]
    items = "".join(
        f"<Item><LineId>{n}</LineId><ItemId>{escape(line['code'])}</ItemId><Title>{escape(line['title'])}</Title>"
        f"<SubCode>{escape(line['variant'])}</SubCode><Quantity>{line['quantity']}</Quantity>"
        f"<UnitPrice>{line['price']}</UnitPrice>"
        + "".join(f"<ItemOption><Name>{escape(name)}</Name><Value>{escape(value)}</Value></ItemOption>"
                  for name, value in line.get("choices") or [])
        + "</Item>"
        for n, line in enumerate(order["items"], start=1))
    body = (f"<OrderId>{escape(order['number'])}</OrderId><Version>1</Version>"
            f"<OrderTime>{_jst(order, 'ordered').isoformat()}</OrderTime>"
            f"<LastUpdateTime>{_jst(order, 'updated').isoformat(timespec='seconds')}</LastUpdateTime>"
            f"<OrderStatus>{order['mall_status'] or '2'}</OrderStatus>"
            f"<Ship><ShipStatus>{SHIP_STATUS[order['status']]}</ShipStatus></Ship>{items}")
    return record(store, "orderInfo", _xml(
        '<ResultSet totalResultsAvailable="1" totalResultsReturned="1" firstResultPosition="1">'
        f"<Result><Status>OK</Status><OrderInfo>{body}</OrderInfo></Result></ResultSet>"))


def _parse(text: Optional[str]) -> Optional[datetime]:
    if not text or not text.strip():
        return None
    return datetime.strptime(text.strip(), TIME).replace(tzinfo=JST)
