"""Yahoo!ショッピング 注文API for YahooConnector.read_orders (tatenpo.malls.order_reading), with the stock API's
access token (renewed the same way). Sources: docs/malls/yahoo.md, "Orders API".

- orderList searches by last update time (UpdateTimeFrom, YYYYMMDDHHMMSS in JST), 100 per page, with each
  order's status fields: an order whose lines Tatenpo has (`known`) needs nothing more;
- orderInfo reads one order: OrderStatus (1 予約中, 2 処理中, 3 保留, 4 キャンセル, 5 完了), Ship/ShipStatus (3 出荷完了,
  4 着荷完了 mean shipped), and its Item lines (ItemId, SubCode, Quantity, Title, UnitPrice, ItemOption).
Both take an XML <Req> carrying the SellerId, and answer XML; a request-level <Error> is raised as MallError.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Optional
from xml.sax.saxutils import escape

from flask_babel import gettext as _

from tatenpo.malls.base import MallError
from tatenpo.malls.http import Pace
from tatenpo.malls.order_reading import JST, aware_utc, naive_utc, parse_time
from tatenpo.models import OrderStatus
from tatenpo.orders.mall_orders import MallOrder, MallOrderLine

if TYPE_CHECKING:
    from tatenpo.malls.yahoo import YahooConnector

PAGE_SIZE = 100
RATE = 1.0  # per URL, like the stock API (docs/malls/yahoo.md)
ORDER_STATUS = {"1": "予約中", "2": "処理中", "3": "保留", "4": "キャンセル", "5": "完了"}
SHIP_STATUS = {"0": "出荷不可", "1": "出荷可", "2": "出荷処理中", "3": "出荷完了", "4": "着荷完了"}
LIST_FIELDS = "OrderId,Version,OrderTime,OrderStatus,ShipStatus,UpdateTime"
INFO_FIELDS = ("OrderId,Version,OrderTime,LastUpdateTime,OrderStatus,ShipStatus,LineId,ItemId,Title,SubCode,"
               "Quantity,UnitPrice,ItemOptionName,ItemOptionValue")


def status_of(order_status: str, ship_status: str) -> OrderStatus:
    if order_status == "4":
        return OrderStatus.CANCELLED
    if order_status == "5" or ship_status in ("3", "4"):
        return OrderStatus.SHIPPED
    return OrderStatus.RECEIVED


def read(connector: "YahooConnector", since: datetime, *, open_numbers: Sequence[str] = (),
         known: Collection[str] = ()) -> list[MallOrder]:
    missing = connector._missing_credentials()
    if missing:
        raise missing
    account = connector.set_pace.key.removesuffix(":setStock")
    list_pace, info_pace = Pace(account + ":orderList", RATE), Pace(account + ":orderInfo", RATE)
    since_jst = aware_utc(since).astimezone(JST).strftime("%Y%m%d%H%M%S")
    listed: dict[str, ET.Element] = {}
    start = 1
    while True:
        root = _post(connector, connector.base + "/orderList", list_pace, (
            f"<Req><Search><Result>{PAGE_SIZE}</Result><Start>{start}</Start><Sort>+update_time</Sort>"
            f"<Condition><UpdateTimeFrom>{since_jst}</UpdateTimeFrom></Condition>"
            f"<Field>{LIST_FIELDS}</Field></Search>"
            f"<SellerId>{escape(connector.seller_id)}</SellerId></Req>"))
        found = root.findall(".//OrderInfo")
        listed.update(((info.findtext("OrderId") or "").strip(), info) for info in found)
        total = int(root.findtext(".//TotalCount") or 0)
        start += len(found)
        if not found or start > total:
            break
    orders = []
    for number, row in listed.items():
        if not number:
            continue
        if number in known:  # its lines are in Tatenpo: the list's status is all that is needed
            orders.append(_order(row, ship_status=_text(row, "ShipStatus"), updated=_list_time(row)))
            continue
        root = _post(connector, connector.base + "/orderInfo", info_pace, (
            f"<Req><Target><OrderId>{escape(number)}</OrderId><Field>{INFO_FIELDS}</Field></Target>"
            f"<SellerId>{escape(connector.seller_id)}</SellerId></Req>"))
        info = root.find(".//OrderInfo")
        if info is not None:
            orders.append(_order(info))
    return orders


def _post(connector, url: str, pace: Pace, xml: str) -> ET.Element:
    body = ('<?xml version="1.0" encoding="UTF-8"?>' + xml).encode("utf-8")
    headers = {"Content-Type": "application/xml; charset=utf-8"}
    connector.http.session.headers["Authorization"] = f"Bearer {connector.tokens.token()}"
    try:
        response = connector.http.call("POST", url, data=body, headers=headers, pace=pace,
                                       classify=connector._classify)
    except MallError as exc:
        if exc.code != "expired_token" or not connector.tokens.can_refresh:
            raise
        connector.http.session.headers["Authorization"] = f"Bearer {connector.tokens.refresh()}"
        response = connector.http.call("POST", url, data=body, headers=headers, pace=pace,
                                       classify=connector._classify)
    if response.status_code != 200:
        error = connector._request_error(response)
        raise MallError(_("Yahoo! refused the order request: %(detail)s", detail=error.message), transient=False,
                        code=error.code)
    try:
        return ET.fromstring(response.content)
    except ET.ParseError as exc:
        raise MallError(_("%(mall)s sent an answer Tatenpo cannot read.", mall="Yahoo!ショッピング"), transient=True,
                        code="bad-response") from exc


def _text(element: ET.Element, path: str) -> str:
    return (element.findtext(path) or "").strip()


def _order(info: ET.Element, ship_status: Optional[str] = None, updated: Optional[datetime] = None) -> MallOrder:
    order_status = _text(info, "OrderStatus")
    ship_status = _text(info, "Ship/ShipStatus") if ship_status is None else ship_status
    mall_status = f"{order_status} {ORDER_STATUS.get(order_status, '')}".strip()
    if ship_status:
        mall_status += f" / {SHIP_STATUS.get(ship_status, ship_status)}"
    lines = []
    for item in info.findall("Item"):
        choices = " / ".join(f"{_text(o, 'Name')}:{_text(o, 'Value')}" for o in item.findall("ItemOption"))
        price = _text(item, "UnitPrice")
        quantity = _text(item, "Quantity")
        lines.append(MallOrderLine(item_code=_text(item, "ItemId"), variant_code=_text(item, "SubCode"),
                                   quantity=int(quantity) if quantity.isdigit() else 0, title=_text(item, "Title"),
                                   choices=choices, unit_price=int(price) if price.isdigit() else None))
    return MallOrder(number=_text(info, "OrderId"), status=status_of(order_status, ship_status),
                     mall_status=mall_status, lines=tuple(line for line in lines if line.quantity > 0),
                     ordered_at=parse_time(_text(info, "OrderTime")),
                     updated_at=updated or parse_time(_text(info, "LastUpdateTime")))


def _list_time(row: ET.Element) -> Optional[datetime]:
    """orderList's UpdateTime (YYYYMMDDHHMMSS, JST) as naive UTC."""
    text = _text(row, "UpdateTime")
    try:
        return naive_utc(datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=JST))
    except ValueError:
        return None
