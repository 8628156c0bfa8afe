"""Mall connectors: one module per mall, behind the small interface in base.py.
Connectors talk to the network only; they never touch the database.

    connector = connector_for(store.mall, store.endpoint, credentials.read(store), redis(), timeout)

CREDENTIAL_FIELDS names, per mall, the credential keys a store holds (the settings form's fields and the
keys of `flask stores add --credential KEY=VALUE`); the sandbox issues exactly these keys.
"""
from __future__ import annotations

from typing import Optional

from flask_babel import lazy_gettext as _l

from tatenpo.malls.base import Connector, CredentialField

CREDENTIAL_FIELDS: dict[str, list[CredentialField]] = {
    "rakuten": [
        CredentialField("service_secret", _l("RMS serviceSecret"),
                        help=_l("RMS › 店舗様向け情報・サービス › WEB APIサービス › 利用設定")),
        CredentialField("license_key", _l("RMS licenseKey"),
                        help=_l("The license key expires periodically; enter the new one when RMS renews it.")),
    ],
    "rakuten-ftp": [
        CredentialField("ftp_user", _l("Stock sync login ID"), secret=False,
                        help=_l("The FTP account of RMS (the upload server's login ID).")),
        CredentialField("ftp_password", _l("Stock sync login password")),
    ],
    "yahoo": [
        CredentialField("seller_id", _l("Seller ID (store account)"), secret=False),
        CredentialField("access_token", _l("Access token"), required=False,
                        help=_l("Yahoo! ID連携 access token of the store API. It lasts an hour: also enter the "
                                "client ID, secret and refresh token so Tatenpo renews it.")),
        CredentialField("client_id", _l("Client ID (application ID)"), secret=False, required=False),
        CredentialField("client_secret", _l("Client secret"), required=False),
        CredentialField("refresh_token", _l("Refresh token"), required=False),
    ],
    "shopify": [
        CredentialField("shop", _l("Shop domain"), secret=False,
                        help=_l("The part before .myshopify.com (e.g. my-shop).")),
        CredentialField("access_token", _l("Admin API access token"),
                        help=_l("From a custom app with the write_inventory and read_inventory scopes.")),
    ],
    "amazon": [
        CredentialField("seller_id", _l("Seller ID (merchant token)"), secret=False),
        CredentialField("access_token", _l("SP-API access token"), required=False,
                        help=_l("The Login with Amazon access token (x-amz-access-token). It lasts an hour: also "
                                "enter the LWA client ID, secret and refresh token so Tatenpo renews it.")),
        CredentialField("client_id", _l("LWA client ID"), secret=False, required=False),
        CredentialField("client_secret", _l("LWA client secret"), required=False),
        CredentialField("refresh_token", _l("Refresh token"), required=False),
    ],
}

# How the settings pages name a store's mall and route (the malls' own names are not translated).
MALL_LABELS: dict[str, str] = {
    "rakuten": "楽天市場 (RMS API)",
    "rakuten-ftp": "楽天市場 (FTP/CSV)",
    "yahoo": "Yahoo!ショッピング",
    "amazon": "Amazon.co.jp",
    "shopify": "Shopify",
}

# The real malls' addresses, used when a store has no endpoint of its own (a sandbox store has one).
DEFAULT_ENDPOINTS: dict[str, Optional[str]] = {
    "rakuten": "https://api.rms.rakuten.co.jp",
    "rakuten-ftp": "sftp://upload.rakuten.ne.jp:22",  # SFTP today; ftp://…:21 in older setups
    "yahoo": "https://circus.shopping.yahooapis.jp",
    "shopify": None,  # https://<shop>.myshopify.com, from the shop domain
    "amazon": "https://sellingpartnerapi-fe.amazon.com",
}


REFRESH_KEYS = ("client_id", "client_secret", "refresh_token")


def credential_fields(mall: str) -> list[CredentialField]:
    return CREDENTIAL_FIELDS.get(mall, [])


def missing_credentials(mall: str, present: set[str]) -> list[CredentialField]:
    """The fields still needed before the store can sync: every required one, and for token malls either an
    access token or the whole refresh trio (client ID, secret, refresh token)."""
    fields = CREDENTIAL_FIELDS.get(mall, [])
    missing = [f for f in fields if f.required and f.key not in present]
    keys = {f.key for f in fields}
    if "refresh_token" in keys and "access_token" not in present and not all(k in present for k in REFRESH_KEYS):
        missing += [f for f in fields if f.key == "access_token"]
    return missing


def connector_class(mall: str) -> type[Connector]:
    if mall == "rakuten":
        from tatenpo.malls.rakuten import RakutenConnector as cls
    elif mall == "rakuten-ftp":
        from tatenpo.malls.rakuten_ftp import RakutenFtpConnector as cls
    elif mall == "yahoo":
        from tatenpo.malls.yahoo import YahooConnector as cls
    elif mall == "shopify":
        from tatenpo.malls.shopify import ShopifyConnector as cls
    elif mall == "amazon":
        from tatenpo.malls.amazon import AmazonConnector as cls
    else:
        raise ValueError(f"unknown mall {mall!r}")
    return cls


def is_deferred(mall: str) -> bool:
    """Whether the mall's push waits for a result that comes minutes later (the connector's `deferred`)."""
    return connector_class(mall).deferred


def connector_for(mall: str, endpoint: Optional[str], credentials: dict, redis=None, timeout: float = 20,
                  **options) -> Connector:
    """The connector for one store. `redis` (a redis.Redis) shares pacing between processes; None paces within
    this process only. `timeout` bounds every network call (seconds). Options: retries (3), backoff (1.0 s,
    doubled per retry) and, for rakuten-ftp, log_poll_seconds / log_wait_seconds."""
    return connector_class(mall)(endpoint, credentials or {}, redis, timeout, **options)
