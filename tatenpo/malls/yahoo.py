"""Yahoo!ショッピング through the store API setStock / getStock (≤1000 codes per call, 1 request/s per URL).

Quantities are sent bare (absolute); a bare number is never negative here, because `-5` would SUBTRACT on
Yahoo. Each <Result> may carry its own ErrorCode while the others succeed (HTTP 207 then). A code is sent once
per request (twice is st-02103). Over the request quota Yahoo answers 403 "Your Request was Forbidden": a wait,
not a bad login. The protocol facts and their sources: docs/malls/yahoo.md.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Optional

import requests
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from tatenpo.malls.base import (
    HINT_ITEM,
    HINT_LOGIN,
    Connector,
    CredentialField,
    CredentialLifetime,
    ItemRef,
    ItemResult,
    LoginCheck,
    MallError,
    PushItem,
    ReadResult,
    push_batches,
)
from tatenpo.malls.authorization import YConnect
from tatenpo.malls.http import HttpClient, Pace, retry_after, server_trouble
from tatenpo.malls.pacing import Pacer, account_key
from tatenpo.malls.tokens import TokenSource, access_token_fields

# Yahoo! ID連携 v2 Authorization Code flow's authorization endpoint (docs/malls/yahoo.md).
AUTHORIZE_URL = "https://auth.login.yahoo.co.jp/yconnect/v2/authorization"
SANDBOX_AUTHORIZE_PATH = "/yconnect/v2/authorization"  # under a non-default endpoint (the sandbox)
TOKEN_URL = "https://auth.login.yahoo.co.jp/yconnect/v2/token"
SANDBOX_TOKEN_PATH = "/yconnect/v2/token"  # under a non-default endpoint (the sandbox) [inferred for others]
RATE = 1.0  # per URL
# setStock: quantity "-999999999～999999999"; item_code and its sub-code "半角英数字、ハイフン「-」", at most 99
# characters each (developer.yahoo.co.jp/webapi/shopping/setStock.html).
MAX_QUANTITY = 999_999_999
CODE = re.compile(r"^[0-9A-Za-z-]{1,99}$")
NAME = "Yahoo!ショッピング"
ITEM_ERRORS = {
    "st-02104": lambda: _("Yahoo! did not accept the quantity."),
    "st-02103": lambda: _("Yahoo! refused the code because it was sent twice in one request."),
}
# 403 with this message: the application's request quota is used up (Yahoo!ショッピングAPI FAQ,
# developer.yahoo.co.jp/webapi/shopping/faq.html: 1日50000リクエスト); also an unknown application ID.
QUOTA = "Your Request was Forbidden"


def _code(item: ItemRef) -> str:
    return f"{item.item_code}:{item.variant_code}" if item.variant_code else item.item_code


def _tag(element: ET.Element) -> str:
    return element.tag.rsplit("}", 1)[-1]


def _child(element: ET.Element, name: str) -> Optional[str]:
    for child in element:
        if _tag(child) == name:
            return (child.text or "").strip()
    return None


class YahooConnector(Connector):
    key = "yahoo"
    label = "Yahoo!ショッピング"
    family = "yahoo"
    family_name = "Yahoo!ショッピング"
    default_endpoint = "https://circus.shopping.yahooapis.jp"
    # The store API and its test host for snbx- sellers (docs/malls/yahoo.md).
    hosts = ("circus.shopping.yahooapis.jp", "test.circus.shopping.yahooapis.jp")
    credential_fields = (
        CredentialField("seller_id", _l("Seller ID (store account)"), secret=False),
        *access_token_fields(
            _l("Access token"),
            _l("Yahoo! ID連携 access token of the store API. It lasts an hour: also enter the "
               "client ID, secret and refresh token so Tatenpo renews it."),
            _l("Client ID (application ID)"), _l("Client secret")),
    )
    preparation = _l("Yahoo!ショッピング: an application registered for the Store API, and an access token for your "
                     "store.")
    # The refresh token lasts 4 weeks; after it, the store must authorise again (docs/malls/yahoo.md).
    credential_lifetime = CredentialLifetime(
        "refresh_token", 28, _l("Yahoo! ID連携: authorise the application again"))
    # The 認可 button: the tokens come from the YConnect authorization code flow instead of being pasted.
    authorization = YConnect(AUTHORIZE_URL, SANDBOX_AUTHORIZE_PATH, TOKEN_URL, SANDBOX_TOKEN_PATH)
    max_batch = 1000

    def __init__(self, endpoint: Optional[str], credentials: dict, redis=None, timeout: float = 20,
                 retries: int = 3, backoff: float = 1.0) -> None:
        self.base = (endpoint or self.default_endpoint).rstrip("/") + "/ShoppingWebService/V1"
        self.seller_id = credentials.get("seller_id", "")
        token_url = endpoint.rstrip("/") + SANDBOX_TOKEN_PATH if endpoint else TOKEN_URL
        self.tokens = TokenSource(NAME, token_url, credentials, redis, timeout, basic_auth=True)
        self.http = HttpClient(NAME, Pacer(redis), timeout, retries, backoff)
        account = account_key("yahoo", self.base, self.seller_id)
        self.set_pace = Pace(account + ":setStock", RATE)
        self.get_pace = Pace(account + ":getStock", RATE)

    def close(self) -> None:
        self.http.close()

    def read_orders(self, since, *, open_numbers=(), known=()):
        """The orders of the 注文API (orderList/orderInfo) changed since `since` (tatenpo.malls.order_reading)."""
        from tatenpo.malls import yahoo_orders  # on use: it builds tatenpo.orders' order reports

        return yahoo_orders.read(self, since, open_numbers=open_numbers, known=known)

    def _classify(self, response: requests.Response) -> Optional[MallError]:
        if response.status_code in (200, 207, 400):
            return None  # 207: some items failed, each says so in its <Result>
        if response.status_code == 403 and QUOTA in response.text:
            return MallError(_("Yahoo! refused the request: the API request quota is used up (or the application ID "
                               "is not registered). Tatenpo tries again later."), transient=True, code="quota",
                             retry_after=retry_after(response))
        if response.status_code in (401, 403):
            challenge = response.headers.get("WWW-Authenticate", "") + response.text
            if "expired" in challenge:
                return MallError(_("The Yahoo! access token has expired. Renew it and enter it in the EC site "
                                   "settings."), transient=False, hint=HINT_LOGIN, code="expired_token")
            return MallError(_("Yahoo! rejected the access token. Check the seller ID and access token."),
                             transient=False, hint=HINT_LOGIN, code="invalid_token")
        trouble = server_trouble(response, NAME)
        if trouble is not None:
            return trouble
        return MallError(_("%(mall)s answered HTTP %(status)s.", mall=NAME, status=response.status_code),
                         transient=False, code=f"http-{response.status_code}")

    def _missing_credentials(self) -> Optional[MallError]:
        if not self.seller_id or not self.tokens.configured:
            return MallError(_("Enter the Yahoo! seller ID and access token in the EC site settings."),
                             transient=False, hint=HINT_LOGIN, code="no-credentials")
        return None

    def _request_error(self, response: requests.Response) -> MallError:
        try:
            root = ET.fromstring(response.content)
            message, code = _child(root, "Message") or "", _child(root, "Code") or "http-400"
        except ET.ParseError:
            message, code = response.text[:200], "http-400"
        if code == "st-02100":
            return MallError(_("Yahoo! did not accept the seller ID %(seller)s.", seller=self.seller_id),
                             transient=False, hint=HINT_LOGIN, code=code)
        return MallError(_("Yahoo! refused the request: %(detail)s (%(code)s)", detail=message, code=code),
                         transient=False, hint=HINT_ITEM, code=code)

    def _call(self, url: str, pace: Pace, chunk: list, quantities: Optional[list[str]] = None) -> list[ET.Element]:
        data = {"seller_id": self.seller_id, "item_code": ",".join(_code(i) for i in chunk)}
        if quantities is not None:
            data["quantity"] = ",".join(quantities)
        # Fetched when none is stored or the fetched one is about to expire (tatenpo.malls.tokens).
        self.http.session.headers["Authorization"] = f"Bearer {self.tokens.token()}"
        try:
            response = self.http.call("POST", url, data=data, pace=pace, classify=self._classify)
        except MallError as exc:
            if exc.code != "expired_token" or not self.tokens.can_refresh:
                raise
            # The mall says it expired (an entered token of unknown age): renew and try once more.
            self.http.session.headers["Authorization"] = f"Bearer {self.tokens.refresh()}"
            response = self.http.call("POST", url, data=data, pace=pace, classify=self._classify)
        if response.status_code == 400:
            raise self._request_error(response)
        try:
            root = ET.fromstring(response.content)
        except ET.ParseError as exc:
            raise MallError(_("%(mall)s sent an answer Tatenpo cannot read.", mall=NAME), transient=True,
                            code="bad-response") from exc
        return [r for r in root if _tag(r) == "Result"]

    @staticmethod
    def _match(chunk: list, results: list[ET.Element]) -> list[Optional[ET.Element]]:
        """Results in request order (Yahoo answers in order; codes are checked in case it does not)."""
        if len(results) == len(chunk) and all(_child(r, "ItemCode") == i.item_code for r, i in zip(results, chunk)):
            return list(results)
        by_code = {(_child(r, "ItemCode"), _child(r, "SubCode") or ""): r for r in results}
        return [by_code.get((i.item_code, i.variant_code or "")) for i in chunk]

    def check_login(self) -> LoginCheck:
        missing = self._missing_credentials()
        if missing:
            return LoginCheck(False, missing.message, missing.hint)
        try:
            self._call(self.base + "/getStock", self.get_pace, [ItemRef(0, "tatenpo-connection-test")])
        except MallError as exc:
            return LoginCheck(False, exc.message, exc.hint)
        return LoginCheck(True, _("Connected to %(mall)s.", mall=NAME))

    def push(self, items: list[PushItem]) -> list[ItemResult]:
        missing = self._missing_credentials()
        if missing:
            raise missing
        results: list[ItemResult] = []
        valid = []
        for item in items:
            if not CODE.match(item.item_code) or (item.variant_code and not CODE.match(item.variant_code)):
                results.append(ItemResult(item.key, False, _("“%(code)s” is not a valid Yahoo! item code.",
                                                             code=_code(item)), "st-02101", False, HINT_ITEM))
            elif not 0 <= item.quantity <= MAX_QUANTITY:
                results.append(ItemResult(item.key, False, _("The quantity must be from 0 to 999,999,999 on Yahoo!."),
                                          "st-02104"))
            else:
                valid.append(item)
        # One entry per Yahoo! code: two listings of one code would be st-02103 for the whole code.
        by_code: dict[str, list[PushItem]] = {}
        for item in valid:
            by_code.setdefault(_code(item), []).append(item)
        sent = [same[-1] for same in by_code.values()]
        keyed = {result.key: result for result in push_batches(sent, self.max_batch, self._set)}
        for same in by_code.values():
            outcome = keyed[same[-1].key]
            results.append(outcome)
            results += [ItemResult(other.key, outcome.ok, outcome.message, outcome.error_code, outcome.transient,
                                   outcome.hint) for other in same[:-1]]
        return results

    def _set(self, chunk: list[PushItem]) -> list[ItemResult]:
        answers = self._call(self.base + "/setStock", self.set_pace, chunk, [str(i.quantity) for i in chunk])
        results = []
        for item, answer in zip(chunk, self._match(chunk, answers)):
            error = _child(answer, "ErrorCode") if answer is not None else "missing"
            if not error:
                results.append(ItemResult(item.key, True))
                continue
            text = ITEM_ERRORS.get(error, lambda: _("Yahoo! did not accept this item (%(code)s).", code=error))()
            results.append(ItemResult(item.key, False, text, error, False, HINT_ITEM if error != "st-02104" else None))
        return results

    def read(self, items: list[ItemRef]) -> list[ReadResult]:
        missing = self._missing_credentials()
        if missing:
            raise missing
        unique = list({_code(item): item for item in items}.values())  # each code once (st-02103 otherwise)
        answered: dict[str, Optional[ET.Element]] = {}
        for start in range(0, len(unique), self.max_batch):
            chunk = unique[start:start + self.max_batch]
            answers = self._call(self.base + "/getStock", self.get_pace, chunk)
            answered.update((_code(item), answer) for item, answer in zip(chunk, self._match(chunk, answers)))
        results: list[ReadResult] = []
        for item in items:
            answer = answered.get(_code(item))
            quantity = _child(answer, "Quantity") if answer is not None else None
            if quantity is None or not quantity.lstrip("-").isdigit():
                code = (_child(answer, "ErrorCode") if answer is not None else None) or "not-found"
                results.append(ReadResult(item.key, None, _("Yahoo! has no item with code %(code)s.",
                                                            code=_code(item)), HINT_ITEM, code))
            else:
                results.append(ReadResult(item.key, int(quantity)))
        return results
