"""Shopify through the GraphQL Admin API: `inventorySetQuantities` (≤250 quantities per call, with
`changeFromQuantity` and an `@idempotent` key) and `nodes(ids:)` to read inventory levels back; cost-based
throttling. The protocol facts and their sources: docs/malls/shopify.md.

A listing's item_code is the inventory item (gid://shopify/InventoryItem/…, or its number) and variant_code the
location. A listing imported from a products CSV may only know its Variant SKU: then item_code is the SKU and
the connector looks the inventory item up (productVariants, query "sku:…"), and an empty location means the
shop's first active location. The lookups are cached for the connector's life.
"""
from __future__ import annotations

import re
import uuid
from typing import Any, Optional

import requests
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from tatenpo.malls.base import (
    HINT_ITEM,
    HINT_LOGIN,
    Connector,
    CredentialField,
    ItemRef,
    ItemResult,
    LoginCheck,
    MallError,
    PushItem,
    ReadResult,
    push_batches,
)
from tatenpo.malls.authorization import ShopifyInstall
from tatenpo.malls.http import HttpClient, Pace, server_trouble
from tatenpo.malls.pacing import Pacer, account_key

API_VERSION = "2026-04"
BUCKET = 1000.0  # standard plan
RESTORE_RATE = 100.0  # points per second, standard plan
# [inferred] Shopify prices a mutation at 10 points; larger inputs cost more in practice, so the estimate used
# for pacing is 10 + 1 per quantity (the sandbox charges the same). THROTTLED answers correct any error.
MUTATION_COST = 10
COST_PER_ITEM = 1
NAME = "Shopify"
ITEM_GID = "gid://shopify/InventoryItem/"
LOCATION_GID = "gid://shopify/Location/"

# From 2026-04 the inventory mutations must carry @idempotent with a key (a UUID per request; a retry of the same
# request sends the same key, so Shopify applies it once). Shopify changelog "Making idempotency mandatory for
# inventory adjustments and refund mutations" (2025-12-12, effective 2026-04); docs/malls/shopify.md.
SET_QUANTITIES = """mutation SetStock($input: InventorySetQuantitiesInput!, $idempotencyKey: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $idempotencyKey) {
    inventoryAdjustmentGroup { id }
    userErrors { code field message }
  }
}"""
READ_LEVELS = """query Levels($ids: [ID!]!, $locationId: ID!) {
  nodes(ids: $ids) {
    ... on InventoryItem { id inventoryLevel(locationId: $locationId) { quantities(names: ["available"]) { name quantity } } }
  }
}"""
FIND_VARIANTS = """query FindVariants($query: String!, $first: Int!) {
  productVariants(first: $first, query: $query) { nodes { id sku inventoryItem { id } } }
}"""
LOCATIONS = """query { locations(first: 10) { nodes { id name isActive } } }"""
SHOP = """query { shop { name myshopifyDomain } }"""

ITEM_MESSAGES = {
    "INVALID_INVENTORY_ITEM": lambda: _("Shopify has no such inventory item."),
    "INVALID_LOCATION": lambda: _("Shopify has no such location."),
    "ITEM_NOT_STOCKED_AT_LOCATION": lambda: _("The item is not stocked at this Shopify location."),
    "INVALID_QUANTITY_NEGATIVE": lambda: _("The quantity cannot be negative."),
    "INVALID_QUANTITY_TOO_HIGH": lambda: _("The quantity is too high for Shopify."),
    "CHANGE_FROM_QUANTITY_STALE": lambda: _("The quantity on Shopify changed since Tatenpo last read it (edited on "
                                            "Shopify?). Read it again before pushing."),
}
ITEM_HINTS = {"INVALID_INVENTORY_ITEM": HINT_ITEM, "INVALID_LOCATION": HINT_ITEM, "ITEM_NOT_STOCKED_AT_LOCATION": HINT_ITEM}


def _gid(value: str, prefix: str) -> Optional[str]:
    if value.startswith(prefix):
        return value
    return prefix + value if value.isdigit() else None


class ShopifyConnector(Connector):
    key = "shopify"
    label = "Shopify"
    family = "shopify"
    family_name = "Shopify"
    default_endpoint = None  # https://<shop>.myshopify.com, from the shop domain
    hosts = ("*.myshopify.com",)  # each shop's Admin API (docs/malls/shopify.md)
    credential_fields = (
        CredentialField("shop", _l("Shop domain"), secret=False,
                        help=_l("The part before .myshopify.com (e.g. my-shop).")),
        CredentialField("access_token", _l("Admin API access token"),
                        help=_l("From a custom app with the write_inventory and read_inventory scopes.")),
        CredentialField("client_id", _l("API key (client ID)"), secret=False, required=False,
                        help=_l("The app's API key: needed only to authorize with the button.")),
        # The client secret exchanges the 認可 button's code for the token and checks the answer's hmac; webhooks an
        # app subscribes through the Admin API are signed with it too (docs/malls/shopify.md).
        CredentialField("client_secret", _l("API secret key (client secret)"), required=False,
                        help=_l("The custom app's API secret key: needed to authorize with the button and for order "
                                "webhooks (Tatenpo checks each one's signature with it).")),
    )
    preparation = _l("Shopify: a custom app with an Admin API access token that may read and write inventory.")
    # A custom app's Admin API token (an offline token) does not expire; it lasts until the app is uninstalled
    # or the token revoked (docs/malls/shopify.md, "Credential expiry").
    credential_lifetime = None
    # The 認可 button: the authorization code grant installs the app and gives its token. The scopes are what the
    # connector calls: inventory levels and inventorySetQuantities, productVariants by SKU, locations, and the
    # orders query and orders/* webhooks of the order catch-up (shopify.dev/docs/api/usage/access-scopes).
    authorization = ShopifyInstall(("read_inventory", "write_inventory", "read_products", "read_locations",
                                    "read_orders"))
    max_batch = 250

    def __init__(self, endpoint: Optional[str], credentials: dict, redis=None, timeout: float = 20,
                 retries: int = 3, backoff: float = 1.0, api_version: str = API_VERSION) -> None:
        self.shop = credentials.get("shop", "").strip().removesuffix(".myshopify.com")
        self.token = credentials.get("access_token", "")
        base = (endpoint or f"https://{self.shop}.myshopify.com").rstrip("/")
        self.url = f"{base}/admin/api/{api_version}/graphql.json"
        self.http = HttpClient(NAME, Pacer(redis), timeout, retries, backoff)
        self.http.session.headers.update({"X-Shopify-Access-Token": self.token, "Content-Type": "application/json"})
        self.pace = Pace(account_key("shopify", base, self.shop), RESTORE_RATE, BUCKET)
        self._items: dict[str, Optional[str]] = {}  # SKU -> inventory item gid
        self._location: Optional[str] = None

    def close(self) -> None:
        self.http.close()

    def read_orders(self, since, *, open_numbers=(), known=()):
        """The orders Shopify's GraphQL `orders` shows changed since `since` (tatenpo.malls.order_reading)."""
        from tatenpo.malls import shopify_orders  # on use: it builds tatenpo.orders' order reports

        return shopify_orders.read(self, since, open_numbers=open_numbers, known=known)

    # Calls ------------------------------------------------------------------------------------

    def _classify(self, response: requests.Response) -> Optional[MallError]:
        status = response.status_code
        if status in (401, 403):
            return MallError(_("Shopify rejected the access token. Check the shop domain and the Admin API access "
                               "token (scopes read_inventory and write_inventory)."), transient=False,
                             hint=HINT_LOGIN, code=f"http-{status}")
        if status == 404:
            return MallError(_("Shopify has no shop at this address. Check the shop domain."), transient=False,
                             hint=HINT_LOGIN, code="http-404")
        if status == 402:
            return MallError(_("The Shopify shop is frozen (unpaid plan)."), transient=False, code="http-402")
        trouble = server_trouble(response, NAME)
        if trouble is not None:
            return trouble
        if status != 200:
            return MallError(_("%(mall)s answered HTTP %(status)s.", mall=NAME, status=status), transient=False,
                             code=f"http-{status}")
        try:
            body = response.json()
        except ValueError:
            return MallError(_("%(mall)s sent an answer Tatenpo cannot read.", mall=NAME), transient=True,
                             code="bad-response")
        errors = body.get("errors") or []
        if any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors):
            throttle = ((body.get("extensions") or {}).get("cost") or {}).get("throttleStatus") or {}
            needed = float(((body.get("extensions") or {}).get("cost") or {}).get("requestedQueryCost") or MUTATION_COST)
            available = float(throttle.get("currentlyAvailable") or 0)
            rate = float(throttle.get("restoreRate") or RESTORE_RATE)
            return MallError(_("%(mall)s limited the request rate; retrying later.", mall=NAME), transient=True,
                             code="THROTTLED", retry_after=max(0.2, (needed - available) / rate))
        if errors:
            detail = "; ".join(str(e.get("message")) for e in errors)
            return MallError(_("Shopify refused the request: %(detail)s", detail=detail), transient=False,
                             code=str((errors[0].get("extensions") or {}).get("code") or "graphql"))
        return None

    def _query(self, query: str, variables: dict[str, Any], cost: float) -> dict:
        if not self.shop or not self.token:
            raise MallError(_("Enter the Shopify shop domain and access token in the EC site settings."),
                            transient=False, hint=HINT_LOGIN, code="no-credentials")
        response = self.http.call("POST", self.url, json={"query": query, "variables": variables}, pace=self.pace,
                                  classify=self._classify, cost=cost)
        return response.json()["data"]

    # Identity ---------------------------------------------------------------------------------

    def _default_location(self) -> str:
        if self._location is None:
            nodes = self._query(LOCATIONS, {}, 2)["locations"]["nodes"]
            active = [n["id"] for n in nodes if n.get("isActive", True)]
            if not active:
                raise MallError(_("The Shopify shop has no active location."), transient=False, code="no-location")
            self._location = active[0]
        return self._location

    def _resolve_skus(self, skus: list[str]) -> None:
        wanted = [s for s in dict.fromkeys(skus) if s not in self._items]
        for start in range(0, len(wanted), 50):
            chunk = wanted[start:start + 50]
            query = " OR ".join('sku:"%s"' % re.sub(r'["\\]', "", s) for s in chunk)
            nodes = self._query(FIND_VARIANTS, {"query": query, "first": 100}, 1 + 100)["productVariants"]["nodes"]
            found = {n["sku"]: (n.get("inventoryItem") or {}).get("id") for n in nodes}
            for sku in chunk:
                self._items[sku] = found.get(sku)

    def _identify(self, items: list) -> tuple[list[tuple[Any, str, str]], list[tuple[Any, str]]]:
        """((item, inventory item gid, location gid) for each known item, (item, message) for unknown ones)."""
        self._resolve_skus([i.item_code for i in items if _gid(i.item_code, ITEM_GID) is None])
        known, unknown = [], []
        for item in items:
            item_id = _gid(item.item_code, ITEM_GID) or self._items.get(item.item_code)
            if item_id is None:
                unknown.append((item, _("Shopify has no variant with SKU %(sku)s.", sku=item.item_code)))
                continue
            location = _gid(item.variant_code, LOCATION_GID) if item.variant_code else self._default_location()
            if location is None:
                unknown.append((item, _("“%(location)s” is not a Shopify location id.", location=item.variant_code)))
                continue
            known.append((item, item_id, location))
        return known, unknown

    # Interface --------------------------------------------------------------------------------

    def check_login(self) -> LoginCheck:
        try:
            shop = self._query(SHOP, {}, 1)["shop"]
        except MallError as exc:
            return LoginCheck(False, exc.message, exc.hint)
        return LoginCheck(True, _("Connected to %(mall)s.", mall=f"Shopify ({shop.get('name')})"))

    def push(self, items: list[PushItem]) -> list[ItemResult]:
        known, unknown = self._identify(items)
        results = [ItemResult(i.key, False, message, "INVALID_INVENTORY_ITEM", False, HINT_ITEM) for i, message in unknown]
        return results + push_batches(known, self.max_batch, self._set, key=lambda entry: entry[0].key)

    def _set(self, chunk: list[tuple[PushItem, str, str]]) -> list[ItemResult]:
        results: list[ItemResult] = []
        while chunk:
            quantities = [{"inventoryItemId": item_id, "locationId": location, "quantity": item.quantity,
                           "changeFromQuantity": item.expected} for item, item_id, location in chunk]
            data = self._query(SET_QUANTITIES, {"idempotencyKey": str(uuid.uuid4()), "input": {
                "name": "available", "reason": "correction", "referenceDocumentUri": "gid://tatenpo/StockSync/push",
                "quantities": quantities}}, MUTATION_COST + COST_PER_ITEM * len(chunk))
            errors = (data.get("inventorySetQuantities") or {}).get("userErrors") or []
            if not errors:
                return results + [ItemResult(item.key, True) for item, _i, _l in chunk]
            bad: dict[int, ItemResult] = {}
            for error in errors:
                field = [str(f) for f in error.get("field") or []]
                index = int(field[2]) if len(field) > 2 and field[2].isdigit() else None
                code = error.get("code") or "USER_ERROR"
                message = ITEM_MESSAGES.get(code, lambda: error.get("message") or code)()
                if index is None or index >= len(chunk):  # names no quantity: the whole call failed
                    return results + [ItemResult(item.key, False, message, code) for item, _i, _l in chunk]
                bad.setdefault(index, ItemResult(chunk[index][0].key, False, message, code, False, ITEM_HINTS.get(code)))
            results += bad.values()
            chunk = [entry for n, entry in enumerate(chunk) if n not in bad]  # the call was atomic: resend the rest
        return results

    def read(self, items: list[ItemRef]) -> list[ReadResult]:
        known, unknown = self._identify(items)
        results = [ReadResult(i.key, None, message, HINT_ITEM, "INVALID_INVENTORY_ITEM") for i, message in unknown]
        by_location: dict[str, list[tuple[ItemRef, str]]] = {}
        for item, item_id, location in known:
            by_location.setdefault(location, []).append((item, item_id))
        for location, entries in by_location.items():
            for start in range(0, len(entries), self.max_batch):
                chunk = entries[start:start + self.max_batch]
                nodes = self._query(READ_LEVELS, {"ids": [i for _item, i in chunk], "locationId": location},
                                    1 + COST_PER_ITEM * len(chunk))["nodes"]
                for (item, item_id), node in zip(chunk, nodes):
                    level = (node or {}).get("inventoryLevel")
                    quantities = {q["name"]: q["quantity"] for q in (level or {}).get("quantities", [])}
                    if node is None or "available" not in quantities:
                        results.append(ReadResult(item.key, None, _("Shopify has no inventory item %(item)s at this "
                                                                    "location.", item=item_id), HINT_ITEM,
                                                  "INVALID_INVENTORY_ITEM"))
                    else:
                        results.append(ReadResult(item.key, int(quantities["available"])))
        return results
