"""Amazon.co.jp through SP-API Listings Items 2021-08-01: one patchListingsItem per SKU merging the quantity
into `fulfillment_availability` (5 requests/s, burst 10), getListingsItem to read it back. The protocol facts
and their sources: docs/malls/amazon.md.

Login with Amazon access tokens live an hour: with client_id, client_secret and refresh_token the connector
fetches them itself (none stored, about to expire, or expired: tatenpo.malls.tokens); an access token alone
works until it expires.
"""
from __future__ import annotations

from typing import Optional
from urllib.parse import quote

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
from tatenpo.malls.authorization import SellerCentralConsent
from tatenpo.malls.http import HttpClient, Pace, server_trouble
from tatenpo.malls.pacing import Pacer, account_key
from tatenpo.malls.tokens import TokenSource, access_token_fields

# The SP-API website authorization workflow's consent page, on Seller Central Japan (docs/malls/amazon.md).
CONSENT_URL = "https://sellercentral.amazon.co.jp/apps/authorize/consent"
SANDBOX_CONSENT_PATH = "/apps/authorize/consent"  # under a non-default endpoint (the sandbox)
TOKEN_URL = "https://api.amazon.com/auth/o2/token"
SANDBOX_TOKEN_PATH = "/auth/o2/token"  # under a non-default endpoint (the sandbox) [inferred for others]
JAPAN = "A1VC38T7YXB528"
RATE, BURST = 5.0, 10
NAME = "Amazon"


def _error_text(response: requests.Response) -> str:
    """Each error's message with its details: SP-API puts the reason in `details` (an expired or invalid LWA
    token is 403 "Access to requested resource is denied." with the reason only there; docs/malls/amazon.md)."""
    try:
        errors = response.json().get("errors", [])
        return "; ".join(" ".join(str(part) for part in (e.get("message"), e.get("details")) if part) for e in errors)
    except (ValueError, AttributeError):
        return response.text[:200]


class AmazonConnector(Connector):
    key = "amazon"
    label = "Amazon.co.jp"
    family = "amazon"
    family_name = "Amazon"
    default_endpoint = "https://sellingpartnerapi-fe.amazon.com"
    # SP-API's Far East region (Japan) and its sandbox (docs/malls/amazon.md).
    hosts = ("sellingpartnerapi-fe.amazon.com", "sandbox.sellingpartnerapi-fe.amazon.com")
    credential_fields = (
        CredentialField("seller_id", _l("Seller ID (merchant token)"), secret=False),
        *access_token_fields(
            _l("SP-API access token"),
            _l("The Login with Amazon access token (x-amz-access-token). It lasts an hour: also "
               "enter the LWA client ID, secret and refresh token so Tatenpo renews it."),
            _l("LWA client ID"), _l("LWA client secret")),
        CredentialField("application_id", _l("SP-API application ID"), secret=False, required=False,
                        help=_l("amzn1.sp.solution.…: needed only to authorize with the button.")),
    )
    preparation = _l("Amazon: a Selling Partner API (SP-API) app authorised for your seller account.")
    # The 認可 button: the refresh token comes from the website authorization workflow instead of being pasted.
    authorization = SellerCentralConsent(CONSENT_URL, SANDBOX_CONSENT_PATH, TOKEN_URL, SANDBOX_TOKEN_PATH)
    # The seller's authorisation of the app lasts 365 days (docs/malls/amazon.md, "Credential expiry").
    credential_lifetime = CredentialLifetime(
        "refresh_token", 365, _l("Seller Central › Manage Your Apps › Re-authorize"))
    # Items per push(): Amazon takes one SKU per patchListingsItem, so push() loops; 20 SKUs are ~4 s at 5/s,
    # short enough for the sync engine's lease and long enough not to cost a database round per SKU.
    max_batch = 20

    def __init__(self, endpoint: Optional[str], credentials: dict, redis=None, timeout: float = 20,
                 retries: int = 3, backoff: float = 1.0) -> None:
        self.base = (endpoint or self.default_endpoint).rstrip("/") + "/listings/2021-08-01/items"
        self.seller_id = credentials.get("seller_id", "")
        token_url = endpoint.rstrip("/") + SANDBOX_TOKEN_PATH if endpoint else TOKEN_URL
        self.tokens = TokenSource(NAME, token_url, credentials, redis, timeout)
        self.http = HttpClient(NAME, Pacer(redis), timeout, retries, backoff)
        self.http.session.headers["Content-Type"] = "application/json"
        account = account_key("amazon", self.base, self.seller_id)
        self.patch_pace = Pace(account + ":patch", RATE, BURST)
        self.get_pace = Pace(account + ":get", RATE, BURST)

    def close(self) -> None:
        self.http.close()

    def read_orders(self, since, *, open_numbers=(), known=()):
        """The orders of SP-API Orders v0 changed since `since` (tatenpo.malls.order_reading)."""
        from tatenpo.malls import amazon_orders  # on use: it builds tatenpo.orders' order reports

        return amazon_orders.read(self, since, open_numbers=open_numbers, known=known)

    def _url(self, sku: str) -> str:
        return f"{self.base}/{quote(self.seller_id, safe='')}/{quote(sku, safe='')}"

    def _classify(self, response: requests.Response) -> Optional[MallError]:
        status = response.status_code
        if status in (200, 400, 404):
            return None
        if status in (401, 403):
            text = _error_text(response)
            # SP-API: errors[].details "The access token you provided has expired." (the message is generic)
            if "has expired" in text:
                return MallError(_("The Amazon access token has expired. Get a new one and enter it in the EC site "
                                   "settings."), transient=False, hint=HINT_LOGIN, code="expired_token")
            return MallError(_("Amazon rejected the access token or the seller ID. Check them in the EC site "
                               "settings."), transient=False, hint=HINT_LOGIN, code="Unauthorized")
        trouble = server_trouble(response, NAME)
        if trouble is not None:
            return trouble
        return MallError(_("%(mall)s answered HTTP %(status)s.", mall=NAME, status=status), transient=False,
                         code=f"http-{status}")

    def _call(self, method: str, url: str, pace: Pace, **kwargs) -> requests.Response:
        # Fetched when none is stored or the fetched one is about to expire (tatenpo.malls.tokens).
        self.http.session.headers["x-amz-access-token"] = self.tokens.token()
        try:
            return self.http.call(method, url, pace=pace, classify=self._classify, **kwargs)
        except MallError as exc:
            if exc.code != "expired_token" or not self.tokens.can_refresh:
                raise
            # The mall says it expired (an entered token of unknown age): renew and try once more.
            self.http.session.headers["x-amz-access-token"] = self.tokens.refresh()
            return self.http.call(method, url, pace=pace, classify=self._classify, **kwargs)

    def _missing_credentials(self) -> Optional[MallError]:
        if not self.seller_id or not self.tokens.configured:
            return MallError(_("Enter the Amazon seller ID and access token in the EC site settings."),
                             transient=False, hint=HINT_LOGIN, code="no-credentials")
        return None

    def check_login(self) -> LoginCheck:
        missing = self._missing_credentials()
        if missing:
            return LoginCheck(False, missing.message, missing.hint)
        try:
            response = self._call("GET", self._url("tatenpo-connection-test"), self.get_pace,
                                  params={"marketplaceIds": JAPAN})
        except MallError as exc:
            return LoginCheck(False, exc.message, exc.hint)
        if response.status_code == 400:
            return LoginCheck(False, _("Amazon refused the request: %(detail)s", detail=_error_text(response)))
        return LoginCheck(True, _("Connected to %(mall)s.", mall="Amazon.co.jp"))

    def push(self, items: list[PushItem]) -> list[ItemResult]:
        missing = self._missing_credentials()
        if missing:
            raise missing
        results = [ItemResult(i.key, False, _("The quantity cannot be negative."), "INVALID")
                   for i in items if i.quantity < 0]
        valid = [i for i in items if i.quantity >= 0]
        return results + push_batches(valid, 1, lambda batch: [self._patch(batch[0])])

    def _patch(self, item: PushItem) -> ItemResult:
        # `merge` changes only the fields sent: `replace` would drop lead_time_to_ship_max_days and restock_date
        # (SP-API "Merge a listing" tutorial and changelog 2025-06-16; docs/malls/amazon.md).
        body = {"productType": item.attributes.get("product_type", "PRODUCT"), "patches": [{
            "op": "merge", "path": "/attributes/fulfillment_availability",
            "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": item.quantity}]}]}
        response = self._call("PATCH", self._url(item.item_code), self.patch_pace, params={"marketplaceIds": JAPAN},
                              json=body)
        if response.status_code == 404:
            return ItemResult(item.key, False, _("Amazon has no listing with seller SKU %(sku)s.", sku=item.item_code),
                              "NOT_FOUND", False, HINT_ITEM)
        if response.status_code == 400:
            return ItemResult(item.key, False, _("Amazon refused the request: %(detail)s", detail=_error_text(response)),
                              "InvalidInput", False, HINT_ITEM)
        data = response.json()
        if data.get("status") == "ACCEPTED":
            return ItemResult(item.key, True)
        issues = data.get("issues") or []
        detail = "; ".join(f"{i.get('message')} ({i.get('code')})" for i in issues) or str(data.get("status"))
        return ItemResult(item.key, False, _("Amazon did not accept the quantity: %(detail)s", detail=detail),
                          (issues[0].get("code") if issues else None) or "INVALID")

    def read(self, items: list[ItemRef]) -> list[ReadResult]:
        missing = self._missing_credentials()
        if missing:
            raise missing
        results = []
        for item in items:
            response = self._call("GET", self._url(item.item_code), self.get_pace,
                                  params={"marketplaceIds": JAPAN, "includedData": "summaries,fulfillmentAvailability"})
            if response.status_code != 200:
                results.append(ReadResult(item.key, None, _("Amazon has no listing with seller SKU %(sku)s.",
                                                            sku=item.item_code), HINT_ITEM, "NOT_FOUND"))
                continue
            levels = [f for f in response.json().get("fulfillmentAvailability") or []
                      if f.get("fulfillmentChannelCode") == "DEFAULT"]
            quantity = levels[0].get("quantity") if levels else None
            results.append(ReadResult(item.key, int(quantity) if quantity is not None else None,
                                      None if quantity is not None else _("Amazon shows no merchant-fulfilled quantity "
                                                                          "for this SKU (FBA?)."),
                                      None if quantity is not None else HINT_ITEM))
        return results
