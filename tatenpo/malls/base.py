"""The one interface every mall connector offers: check the login, push absolute quantities, read them back.

Connectors receive plain values (endpoint, credentials, Redis for pacing) and return plain results; the
sync engine (tatenpo.sync) turns those into history rows. Messages are for the shop, in its language.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Optional

# Which of the seed's three troubleshooting checks a failure points to.
HINT_LOGIN = "login"  # 〇ECサイト設定のログインIDやパスワードに間違いが無いか
HINT_ITEM = "item"  # 〇商品情報が実際のECサイトとタテンポ上で相違が無いか
HINT_APPLICATION = "application"  # 〇自動在庫同期申請が完了しているか


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
    quantity: Optional[int]  # None: the mall does not have the item
    message: Optional[str] = None


@dataclass
class LoginCheck:
    ok: bool
    message: str
    hint: Optional[str] = None


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
    """One store's connection to its mall."""

    mall: str  # tatenpo.models.Mall value
    max_batch: int  # items per call

    @abstractmethod
    def check_login(self) -> LoginCheck:
        """接続テスト: do the credentials work? Never raises for a wrong password: it says so."""

    @abstractmethod
    def push(self, items: list[PushItem]) -> list[ItemResult]:
        """Set absolute quantities: batches to the mall's maximum and paces to its rate limit. One result per
        item, in any order. Raises MallError when the whole call fails (after retrying transient failures)."""

    @abstractmethod
    def read(self, items: list[ItemRef]) -> list[ReadResult]:
        """Read the quantities the mall shows now (read-back, drift)."""
