"""The malls Tatenpo pushes to: one connector module per mall behind the interface in base.py, and the one
registry of them. Each connector class declares what a mall is (its stored key, names, default address,
credential fields, options); everything else (settings, the support center, the database's CHECK, the CLI,
the setup guide, the sync engine) reads it from here. Adding a mall is one module and its line in CONNECTORS.
Connectors talk to the network only; they never touch the database.

    connector = connector_for(store.mall, store.endpoint, credentials.read(store), redis(), timeout)
"""
from __future__ import annotations

from typing import Optional

from tatenpo.malls.amazon import AmazonConnector
from tatenpo.malls.base import Connector, CredentialField
from tatenpo.malls.rakuten import RakutenConnector
from tatenpo.malls.rakuten_ftp import RakutenFtpConnector
from tatenpo.malls.shopify import ShopifyConnector
from tatenpo.malls.yahoo import YahooConnector

# In the order the settings and the support center list them.
CONNECTORS: list[type[Connector]] = [
    RakutenConnector,
    RakutenFtpConnector,
    YahooConnector,
    AmazonConnector,
    ShopifyConnector,
]

REFRESH_KEYS = ("client_id", "client_secret", "refresh_token")


def mall(key: str) -> type[Connector]:
    """The connector class of a store's mall (Store.mall); ValueError for a key no connector has."""
    for cls in CONNECTORS:
        if cls.key == key:
            return cls
    raise ValueError(f"unknown mall {key!r}")


def keys() -> list[str]:
    """Every value Store.mall may hold."""
    return [cls.key for cls in CONNECTORS]


def families() -> list[str]:
    """The malls themselves (楽天市場 once, whatever the route): what a support application covers."""
    return list(dict.fromkeys(cls.family for cls in CONNECTORS))


def label(key: str) -> str:
    return mall(key).label


def family_of(key: str) -> str:
    return mall(key).family


def family_name(family: str) -> str:
    """The mall's own name (rakuten → 楽天市場), untranslated; KeyError for a family no connector has."""
    for cls in CONNECTORS:
        if cls.family == family:
            return cls.family_name
    raise KeyError(family)


def credential_fields(key: str) -> tuple[CredentialField, ...]:
    return mall(key).credential_fields


def missing_credentials(key: str, present: set[str]) -> list[CredentialField]:
    """The fields still needed before the store can sync: every required one, and for token malls either an
    access token or the whole refresh trio (client ID, secret, refresh token)."""
    fields = credential_fields(key)
    missing = [f for f in fields if f.required and f.key not in present]
    names = {f.key for f in fields}
    if "refresh_token" in names and "access_token" not in present and not all(k in present for k in REFRESH_KEYS):
        missing += [f for f in fields if f.key == "access_token"]
    return missing


def is_deferred(key: str) -> bool:
    """Whether the mall's push waits for a result that comes minutes later (the connector's `deferred`)."""
    return mall(key).deferred


def connector_for(key: str, endpoint: Optional[str], credentials: dict, redis=None, timeout: float = 20,
                  **options) -> Connector:
    """The connector for one store. `redis` (a redis.Redis) shares pacing between processes; None paces within
    this process only. `timeout` bounds every network call (seconds). Options: retries (3), backoff (1.0 s,
    doubled per retry) and whatever the connector's `options_from` gives (tatenpo.setup.stores)."""
    return mall(key)(endpoint, credentials or {}, redis, timeout, **options)
