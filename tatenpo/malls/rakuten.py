"""楽天市場 through the RMS Inventory API 2.0 (bulk-upsert 1–400 items at 1 req/s, bulk-get 1–1000 at 5 req/s).

Quantities go as ABSOLUTE (idempotent). A 400 names the bad entries by `propertyPath` (inventories[3].quantity);
the whole request is refused then, so the bad items fail and the rest is sent again. The protocol facts and
their sources: docs/malls/rakuten.md.
"""
from __future__ import annotations

import base64
import re
from typing import Optional

import requests
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from tatenpo.malls.base import (
    HINT_APPLICATION,
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
from tatenpo.malls.http import HttpClient, Pace, server_trouble
from tatenpo.malls.pacing import Pacer, account_key

UPSERT_RATE = 1.0
GET_RATE = 5.0
MAX_QUANTITY = 99999
PROPERTY = re.compile(r"inventories\[(\d+)\](?:\.(\w+))?")
NAME = "楽天RMS"


def _errors(response: requests.Response) -> list[dict]:
    """The answer's errors as [{"code", "message"}]: the Inventory API's `errors`, or the RMS gateway's
    `Results` ({"errorCode": "ES01-01", "message": "Un-Authorised"} for a refused key)."""
    try:
        body = response.json()
    except ValueError:
        return []
    if not isinstance(body, dict):
        return []
    errors = body.get("errors")
    if isinstance(errors, list):
        return errors
    results = body.get("Results")
    if isinstance(results, dict) and results.get("errorCode"):
        return [{"code": results["errorCode"], "message": results.get("message", "")}]
    return []


class RakutenConnector(Connector):
    key = "rakuten"
    label = "楽天市場 (RMS API)"
    family = "rakuten"
    family_name = "楽天市場"
    default_endpoint = "https://api.rms.rakuten.co.jp"
    hosts = ("api.rms.rakuten.co.jp",)  # RMS WEB API (docs/malls/rakuten.md)
    credential_fields = (
        CredentialField("service_secret", _l("RMS serviceSecret"),
                        help=_l("RMS › 店舗様向け情報・サービス › WEB APIサービス › 利用設定")),
        CredentialField("license_key", _l("RMS licenseKey"),
                        help=_l("The license key expires periodically; enter the new one when RMS renews it.")),
    )
    preparation = _l("楽天市場: RMS WEB SERVICE enabled, with its serviceSecret and licenseKey (the licence key "
                     "expires every 3 months).")
    # The licenseKey lasts 90 days from issue (docs/malls/rakuten.md, "Credential expiry").
    credential_lifetime = CredentialLifetime(
        "license_key", 90, _l("RMS › 店舗様向け情報・サービス › WEB APIサービス › 利用設定"))
    max_batch = 400
    read_batch = 1000

    def __init__(self, endpoint: Optional[str], credentials: dict, redis=None, timeout: float = 20,
                 retries: int = 3, backoff: float = 1.0) -> None:
        self.base = (endpoint or self.default_endpoint).rstrip("/") + "/es/2.0/inventories"
        self.secret = credentials.get("service_secret", "")
        self.license_key = credentials.get("license_key", "")
        token = base64.b64encode(f"{self.secret}:{self.license_key}".encode()).decode()
        self.http = HttpClient(NAME, Pacer(redis), timeout, retries, backoff)
        # Exactly `application/json`, as the Inventory API 2.0 request header reads (docs/malls/rakuten.md).
        self.http.session.headers.update({"Authorization": f"ESA {token}", "Content-Type": "application/json"})
        account = account_key("rakuten", self.base, self.secret)
        self.upsert_pace = Pace(account + ":bulk-upsert", UPSERT_RATE)
        self.get_pace = Pace(account + ":bulk-get", GET_RATE)

    def close(self) -> None:
        self.http.close()

    def read_orders(self, since, *, open_numbers=(), known=()):
        """The orders of the 受注API (楽天ペイ) changed since `since` (tatenpo.malls.order_reading)."""
        from tatenpo.malls import rakuten_orders  # on use: it builds tatenpo.orders' order reports

        return rakuten_orders.read(self, since, open_numbers=open_numbers, known=known)

    # Errors -----------------------------------------------------------------------------------

    def _classify(self, response: requests.Response) -> Optional[MallError]:
        if response.status_code in (200, 204, 400):
            return None  # 400 names bad entries: the caller sorts them out
        codes = [e.get("code") for e in _errors(response)]
        if response.status_code == 401:
            # ES01-01 Un-Authorised: a wrong serviceSecret / licenseKey or an expired licenseKey (docs/malls/rakuten.md)
            return MallError(_("RMS rejected the login (%(code)s). Check the serviceSecret and licenseKey in the EC "
                               "site settings; the licenseKey expires every 90 days and must then be renewed in RMS.",
                               code=codes[0] if codes else "HTTP 401"), transient=False, hint=HINT_LOGIN,
                             code=codes[0] if codes else "http-401")
        if response.status_code == 403:
            return MallError(_("RMS does not allow this shop to use the inventory API. Check that the RMS WEB "
                               "SERVICE inventory API is enabled for the shop."), transient=False,
                             hint=HINT_APPLICATION, code=codes[0] if codes else "http-403")
        trouble = server_trouble(response, NAME)
        if trouble is not None:
            return trouble
        return MallError(_("%(mall)s answered HTTP %(status)s.", mall=NAME, status=response.status_code),
                         transient=False, code=f"http-{response.status_code}")

    def _missing_credentials(self) -> Optional[MallError]:
        if not self.secret or not self.license_key:
            return MallError(_("Enter the RMS serviceSecret and licenseKey in the EC site settings."),
                             transient=False, hint=HINT_LOGIN, code="no-credentials")
        return None

    # Interface --------------------------------------------------------------------------------

    def check_login(self) -> LoginCheck:
        try:
            self._read_batch([ItemRef(0, "tatenpo-connection-test", "normal-inventory")])
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
            if not 0 <= item.quantity <= MAX_QUANTITY:
                results.append(ItemResult(item.key, False, _("The quantity must be from 0 to 99999 on Rakuten."),
                                          "IE0003"))
            else:
                valid.append(item)
        return results + push_batches(valid, self.max_batch, self._upsert)

    def _upsert(self, chunk: list[PushItem]) -> list[ItemResult]:
        results: list[ItemResult] = []
        while chunk:
            body = {"inventories": [{"manageNumber": i.item_code, "variantId": i.variant_code or "normal-inventory",
                                     "mode": "ABSOLUTE", "quantity": i.quantity} for i in chunk]}
            response = self.http.call("POST", self.base + "/bulk-upsert", json=body, pace=self.upsert_pace,
                                      classify=self._classify)
            if response.status_code != 400:
                return results + [ItemResult(i.key, True) for i in chunk]
            bad: dict[int, ItemResult] = {}
            for error in _errors(response):
                path = ((error.get("metadata") or {}).get("propertyPath")) or ""
                match = PROPERTY.match(path)
                if not match or int(match.group(1)) >= len(chunk):
                    continue
                index, field = int(match.group(1)), match.group(2) or ""
                item = chunk[index]
                hint = HINT_ITEM if field in ("manageNumber", "variantId") else None
                message = _("RMS refused %(field)s of this item: %(detail)s (%(code)s)", field=field or "inventory",
                            detail=error.get("message", ""), code=error.get("code", ""))
                bad.setdefault(index, ItemResult(item.key, False, message, error.get("code"), False, hint))
            if not bad:  # a refusal that names no item: every item of the request failed
                errors = _errors(response)
                detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors) or response.text[:200]
                return results + [ItemResult(i.key, False, _("RMS refused the request: %(detail)s", detail=detail),
                                             errors[0].get("code") if errors else "http-400") for i in chunk]
            results += bad.values()
            chunk = [item for index, item in enumerate(chunk) if index not in bad]
        return results

    def read(self, items: list[ItemRef]) -> list[ReadResult]:
        missing = self._missing_credentials()
        if missing:
            raise missing
        results: list[ReadResult] = []
        for start in range(0, len(items), self.read_batch):
            results += self._read_batch(items[start:start + self.read_batch])
        return results

    def _read_batch(self, chunk: list[ItemRef]) -> list[ReadResult]:
        body = {"inventories": [{"manageNumber": i.item_code, "variantId": i.variant_code or "normal-inventory"}
                                for i in chunk]}
        response = self.http.call("POST", self.base + "/bulk-get", json=body, pace=self.get_pace,
                                  classify=self._classify)
        if response.status_code == 400:
            errors = _errors(response)
            detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
            raise MallError(_("RMS refused the request: %(detail)s", detail=detail), transient=False,
                            code=errors[0].get("code") if errors else "http-400", hint=HINT_ITEM)
        found = {(e["manageNumber"].lower(), e["variantId"]): e["quantity"]
                 for e in response.json().get("inventories", [])}
        results = []
        for item in chunk:
            quantity = found.get((item.item_code.lower(), item.variant_code or "normal-inventory"))
            if quantity is None:
                results.append(ReadResult(item.key, None, _(
                    "Rakuten has no item with 商品管理番号 %(item)s and SKU管理番号 %(variant)s.",
                    item=item.item_code, variant=item.variant_code or "normal-inventory"), HINT_ITEM, "GE0014"))
            else:
                results.append(ReadResult(item.key, int(quantity)))
        return results
