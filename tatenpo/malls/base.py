"""The one interface every mall connector offers: check the login, push absolute quantities, read them back.

Connectors receive plain values (endpoint, credentials, Redis for pacing) and return plain results; the
sync engine (tatenpo.sync) turns those into history rows. Messages are for the shop, in its language.

Get a connector with `tatenpo.malls.connector_for(mall, endpoint, credentials, redis, timeout)`.

What a push result means:
- `ok=True` means the mall ACCEPTED the quantity. Most malls also accept an item they do not have (the stock
  is parked), so only `read()` tells whether the item exists: ReadResult.quantity is None (hint HINT_ITEM)
  for an item the mall does not show. Verify with read() after a push.
- `transient=True`: retrying later can succeed (timeout, 5xx, throttling, maintenance); the connector has
  already retried with backoff inside the call.
- Shopify: PushItem.expected becomes `changeFromQuantity`; a mismatch fails that item with error_code
  CHANGE_FROM_QUANTITY_STALE (not transient): read the mall's quantity and push again with it as expected.
  expected=None opts out of the check.

Deferred pushes (the Rakuten FTP/CSV route, `deferred = True`): the mall reports results minutes later in a
log file. `submit(items)` uploads and returns a JSON-serialisable handle (a dict) at once; keep it (e.g. in
the SyncRun) and call `collect(handle)` later, from any process: it returns None while the log is not there
yet, else one ItemResult per submitted item; after `handle["give_up_at"]` (epoch seconds) the items still
without a log come back failed (transient, error_code "no-log"). `push()` does both, waiting for the log.
Such a connector cannot read stock (`can_read = False`): the log is the check of step 8.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Optional, Sequence

from flask_babel import lazy_gettext as _l

# Which of the three troubleshooting checks (docs/FLOW.md) a failure points to.
HINT_LOGIN = "login"  # 〇ECサイト設定のログインIDやパスワードに間違いが無いか
HINT_ITEM = "item"  # 〇商品情報が実際のECサイトとタテンポ上で相違が無いか
HINT_APPLICATION = "application"  # 〇自動在庫同期申請が完了しているか

# The troubleshooting lines, for pages that show a failure with its hint.
HINT_TEXT = {
    HINT_LOGIN: _l("Check that the login ID and password (API keys) in the EC site settings are correct."),
    HINT_ITEM: _l("Check that the product information on the EC site and in Tatenpo match."),
    HINT_APPLICATION: _l("Check that the automatic stock sync application has been completed."),
}


def hint_text(hint: Optional[str]) -> str:
    return str(HINT_TEXT[hint]) if hint in HINT_TEXT else ""


@dataclass(frozen=True)
class CredentialField:
    """One credential a store of a mall needs: the key stored (and given to `stores add --credential`), its
    label on the settings form, and whether it is a secret (write-only, shown as 設定済み)."""

    key: str
    label: Any
    secret: bool = True
    help: Any = ""
    required: bool = True  # False: optional (e.g. the OAuth refresh trio beside an access token)


@dataclass(frozen=True)
class CredentialLifetime:
    """The credential of a mall that expires on the mall's own rule, so the shop must renew it by hand: which
    field it is, how many days it lasts from the day it was issued, and where the shop renews it (the mall's
    screen). tatenpo.setup.credential_dates keeps the dates; the connector docs cite the rule."""

    field: str
    days: int
    renew_at: Any = ""


@dataclass(frozen=True)
class ItemRef:
    """A listing as the mall knows it. `key` is the caller's (the listing id), echoed in every result."""

    key: int
    item_code: str
    variant_code: str = ""
    attributes: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class PushItem(ItemRef):
    quantity: int = 0
    # The quantity we believe the mall holds now (Shopify's changeFromQuantity); None when unknown.
    expected: Optional[int] = None


@dataclass
class ItemResult:
    key: int
    ok: bool
    message: Optional[str] = None
    error_code: Optional[str] = None
    transient: bool = False  # retry later: the entry stays due
    hint: Optional[str] = None


@dataclass
class ReadResult:
    key: int
    quantity: Optional[int]  # None: the mall does not have the item (or cannot say: see message)
    message: Optional[str] = None
    hint: Optional[str] = None  # HINT_ITEM when the mall does not have the item
    error_code: Optional[str] = None


@dataclass
class LoginCheck:
    ok: bool
    message: str
    hint: Optional[str] = None
    host_key: Optional[str] = None  # SFTP: the key the server presented, for the store to trust from now on


class MallError(Exception):
    """A failure of a whole call (not of one item): bad credentials, outage, throttling, timeout."""

    def __init__(self, message: str, *, transient: bool, hint: Optional[str] = None, code: Optional[str] = None,
                 retry_after: Optional[float] = None) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.hint = hint
        self.code = code
        self.retry_after = retry_after


class Connector(ABC):
    """One store's connection to its mall. The class also declares what the rest of Tatenpo knows about that
    mall (its key, names, address, credentials, options); tatenpo.malls registers the classes."""

    key: ClassVar[str]  # Store.mall: stored in the database, so it never changes
    label: ClassVar[str]  # how the settings pages name a store's mall and route, e.g. 楽天市場 (RMS API)
    family: ClassVar[str]  # the mall itself, whatever the route: what a support application covers
    family_name: ClassVar[str]  # the mall's own name (楽天市場), shown untranslated in every language
    default_endpoint: ClassVar[Optional[str]]  # the real mall's address, for a store without an endpoint
    endpoint_schemes: ClassVar[tuple[str, ...]] = ("http", "https")  # what a store's own endpoint may use
    # The mall's own hosts ("*.domain" for any subdomain): a store's endpoint must be one of them, or a host the
    # operator allowed (tatenpo.setup.endpoints), so stored credentials never go to another server.
    hosts: ClassVar[tuple[str, ...]] = ()
    credential_fields: ClassVar[tuple[CredentialField, ...]]  # the settings form's fields, `--credential` keys
    preparation: ClassVar[Any]  # what the shop needs from the mall before connecting (setup guide, step 2)
    # The credential that expires by the mall's rule (None: none does, e.g. Shopify's offline access token).
    credential_lifetime: ClassVar[Optional[CredentialLifetime]] = None
    # The mall's browser authorization flow (tatenpo.malls.authorization), None where tokens can only be pasted.
    authorization: ClassVar[Optional[Any]] = None
    # App config key → connector option: operators (and tests) may tune these; unset, the defaults apply.
    config_options: ClassVar[Mapping[str, str]] = {"MALL_RETRIES": "retries", "MALL_BACKOFF_SECONDS": "backoff"}

    max_batch: int  # items per push() call: the mall's batch size (Amazon: 20 SKUs, one request each inside)
    can_read: bool = True  # False: read() cannot tell quantities (Rakuten FTP); see the module docstring
    deferred: bool = False  # True: submit()/collect() exist; see the module docstring

    @classmethod
    def options_from(cls, store_settings: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        """The options a store's connector takes besides its credentials: the app's tuning (`config`) and what
        the store itself hands over from its settings (none, unless a connector says otherwise)."""
        return {option: config[name] for name, option in cls.config_options.items() if config.get(name) is not None}

    @abstractmethod
    def check_login(self) -> LoginCheck:
        """接続テスト: do the credentials work? Never raises for a wrong password: it says so."""

    @abstractmethod
    def push(self, items: list[PushItem]) -> list[ItemResult]:
        """Set absolute quantities: batches to the mall's maximum and paces to its rate limit. One result per
        item, in any order. Raises MallError when the whole call fails (after retrying transient failures)
        before anything was pushed; once a batch went through, the items of a later failed batch come back
        as failed ItemResults carrying that error's message, code, hint and transient flag."""

    @abstractmethod
    def read(self, items: list[ItemRef]) -> list[ReadResult]:
        """Read the quantities the mall shows now (read-back, drift)."""

    def close(self) -> None:
        """Release network resources (a connector may be reused for many calls before)."""


def failed(key: int, error: MallError) -> ItemResult:
    """An item that shares the fate of its failed call."""
    return ItemResult(key, False, error.message, error.code, error.transient, error.hint)


def push_batches(entries: Sequence, size: int, send: Callable[[list], list[ItemResult]],
                 key: Callable[[Any], int] = lambda entry: entry.key) -> list[ItemResult]:
    """Send `entries` in batches of `size`. A MallError before anything went through is raised (the whole push
    failed); after that, the failed batch and every later one come back as failed items carrying the error,
    without knocking on a mall that just refused."""
    results: list[ItemResult] = []
    for start in range(0, len(entries), size):
        batch = list(entries[start:start + size])
        try:
            results += send(batch)
        except MallError as exc:
            if start == 0:
                raise
            return results + [failed(key(entry), exc) for entry in entries[start:]]
    return results
