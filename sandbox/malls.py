"""The sandbox's one list of malls, like Tatenpo's tatenpo.malls.CONNECTORS: each mall module (rakuten.py,
ftp.py, yahoo.py, shopify.py, amazon.py) declares a SandboxMall saying everything the rest of the sandbox needs
to know about it: its key, display name, the credentials it issues, its endpoint for a store, its items'
identity, its listing files, its order mails and order numbers, and the blueprints that serve its API.
Admin, state, catalog, listing files, order mails, the outbox and Tatenpo's demo set-up read the list.

A sixth mall is one module with its SandboxMall and its line in MODULES below."""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional

# The modules that declare malls, in the order the pages and the demo list them.
MODULES = ("rakuten", "ftp", "yahoo", "shopify", "amazon")


@dataclass(frozen=True)
class Endpoints:
    """Where this sandbox listens: what a store's endpoint is built from."""

    public_url: str
    ftp_host: str
    ftp_port: int
    sftp_port: int = 0


@dataclass(frozen=True)
class ListingFile:
    """One listing file the mall offers for download: `render(store, items, groups)` → (content type, bytes)."""

    kind: str
    filename: str
    render: Callable[[dict, list[dict], list[list[dict]]], tuple[str, bytes]]


@dataclass(frozen=True)
class SandboxMall:
    key: str  # the store's mall, the same key Tatenpo's Store.mall holds
    name: str  # shown on the pages and in store names
    issue_credentials: Callable[[int, str], dict[str, str]]  # (store id, shop) → credentials, named as Tatenpo takes them
    endpoint: Callable[[dict, Endpoints], str]  # the base URL to configure in Tatenpo for a store
    identity: Callable[[int, int, int, str, str, str], dict[str, Any]]  # (store id, i, n, base, sku, option) → code/variant/extra
    files: tuple[ListingFile, ...]  # the first is the default download
    compose_mail: Callable[[str, str, str, datetime, list[dict], str], bytes]  # the order confirmation mail
    order_number: Callable[[str, int, datetime], str]  # (store key, sequence, ordered at) → the mall's order number
    store_key: Callable[[dict], str]  # how the mall names the shop inside its order numbers
    buyer: str  # who the sandbox's orders are from on this mall
    blueprints: tuple = ()  # Flask blueprints serving the mall's API
    # The notice the mall mails when an order is cancelled (None: the sandbox sends none for this mall).
    compose_cancellation: Optional[Callable[..., bytes]] = None
    # Extra fields of the store's admin JSON (the FTP route's host and port).
    describe: Callable[[dict, Endpoints], dict[str, Any]] = field(default=lambda store, where: {})
    # Extra fields of an item in the admin stock JSON (Shopify's handle).
    item_fields: Callable[[dict], dict[str, Any]] = field(default=lambda item: {})


def _load() -> dict[str, SandboxMall]:
    found: dict[str, SandboxMall] = {}
    for name in MODULES:
        module = importlib.import_module(f"{__package__}.{name}")
        for declared in module.SANDBOX_MALLS:
            found[declared.key] = declared
    return found


_MALLS: Optional[dict[str, SandboxMall]] = None


def all_malls() -> Mapping[str, SandboxMall]:
    """Every sandbox mall by key, in MODULES order (loaded on first use: the mall modules import Flask)."""
    global _MALLS
    if _MALLS is None:
        _MALLS = _load()
    return _MALLS


def mall_keys() -> tuple[str, ...]:
    return tuple(all_malls())


def mall(key: str) -> SandboxMall:
    """The sandbox mall of a store; ValueError for a key no module declares."""
    try:
        return all_malls()[key]
    except KeyError:
        raise ValueError(f"unknown sandbox mall {key!r}; known: {', '.join(all_malls())}") from None


def names() -> dict[str, str]:
    return {key: m.name for key, m in all_malls().items()}


def blueprints() -> list:
    """Every mall's blueprints, each once (two routes of one mall may share them)."""
    seen: list = []
    for declared in all_malls().values():
        seen += [bp for bp in declared.blueprints if bp not in seen]
    return seen
