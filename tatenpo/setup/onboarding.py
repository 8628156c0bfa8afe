"""導入ガイド: the eight steps (docs/FLOW.md) for one store, each marked done from what really happened (an application
設定完了, a passed 接続テスト, imported listings, a stock edit, a ✓ push, a 反映済み read-back) — never from a
box the user ticks. Also the three troubleshooting checks, answered from the same state.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from sqlalchemy import and_, exists, func, not_, or_, select

from tatenpo import malls as mall_registry
from tatenpo.models import (
    ApplicationStatus,
    ImportJob,
    InboundMail,
    Listing,
    MailStatus,
    StockChangeKind,
    StockHistory,
    Store,
    SupportApplication,
    SyncAttempt,
)
from tatenpo.platform.extensions import db

# Where the shop registers its order-mail address in each mall, by mall family: the malls' own screen names,
# the same in every language (docs/malls/order-mails.md gives the sources).
ORDER_MAIL_SETTING = {
    "rakuten": "RMS › 店舗設定 › 基本情報設定 › 店舗・企業詳細情報 › 注文確認メール送り先メールアドレス",
    "yahoo": "ストアクリエイターPro › 設定 › 通知設定",
    "amazon": "セラーセントラル › 設定 › 通知の設定",
    "shopify": "設定 › 通知 › スタッフ通知",
}

# The eight steps, in order. The page gives each its words and its link.
STEP_KEYS = ("apply", "mall_setup", "prepare_data", "import", "sync_settings", "edit_stock", "history", "reflected")


@dataclass
class Step:
    number: int
    key: str
    done: bool
    current: bool = False
    # Facts the page shows beside the step (e.g. how many listings were imported).
    facts: dict = field(default_factory=dict)


@dataclass
class Check:
    """One of the troubleshooting checks: ok True/False, or None when it cannot be told yet."""

    key: str  # 'login' / 'item' / 'application'
    ok: Optional[bool]


@dataclass
class Progress:
    store: Optional[Store]
    steps: list[Step]
    checks: list[Check]

    @property
    def done_count(self) -> int:
        return sum(1 for s in self.steps if s.done)

    @property
    def complete(self) -> bool:
        return self.done_count == len(self.steps)

    @property
    def current(self) -> Optional[Step]:
        return next((s for s in self.steps if s.current), None)


@dataclass
class MailRoute:
    """A store's order-mail route for step 1: its issued address, where the mall takes it, and whether a mail
    from the mall has come through it."""

    address: str
    where: Optional[str]
    confirmed: bool


def mail_route(store: Store) -> Optional[MailRoute]:
    """None until support issues the store an address (設定完了)."""
    if not store.order_mail_address:
        return None
    # Confirmed by a mail the mall itself sent: an order, or a notice of the mall read as not an order. A test
    # mail (or anyone else's) is read as unknown-sender, and another mall's mail (wrong-mall) means the address
    # was registered in the wrong mall, so neither proves the route.
    from_the_mall = or_(
        InboundMail.status == MailStatus.ORDER.value,
        and_(InboundMail.status == MailStatus.IGNORED.value,
             not_(InboundMail.reason.startswith("unknown-sender")), not_(InboundMail.reason.startswith("wrong-mall"))),
    )
    confirmed = db.session.scalar(select(exists().where(InboundMail.store_id == store.id, from_the_mall)))
    return MailRoute(address=store.order_mail_address,
                     where=ORDER_MAIL_SETTING.get(mall_registry.family_of(store.mall)), confirmed=bool(confirmed))


def application_state(mall: Optional[str]) -> Optional[str]:
    """The best status among applications covering the mall (any mall when None): completed beats pending
    beats returned; None when there is no application at all."""
    family = mall_registry.family_of(mall) if mall else None
    seen: set[str] = set()
    for malls, status in db.session.execute(select(SupportApplication.malls, SupportApplication.status)):
        if family is None or family in (malls or []):
            seen.add(status)
    for status in (ApplicationStatus.COMPLETED.value, ApplicationStatus.PENDING.value, ApplicationStatus.RETURNED.value):
        if status in seen:
            return status
    return None


def progress(store: Optional[Store]) -> Progress:
    """The eight steps for one store; with no store yet, only step 1 can be done."""
    application = application_state(store.mall if store else None)
    if store is None:
        done = [application == ApplicationStatus.COMPLETED.value] + [False] * 7
        steps = _steps(done, {"apply": {"application": application}})
        return Progress(store=None, steps=steps, checks=[])

    listing_count = db.session.scalar(select(func.count()).select_from(Listing).where(Listing.store_id == store.id)) or 0
    linked_count = (
        db.session.scalar(
            select(func.count()).select_from(Listing).where(Listing.store_id == store.id, Listing.product_id.is_not(None))
        )
        or 0
    )
    imported_files = db.session.scalar(
        select(func.count()).select_from(ImportJob).where(ImportJob.store_id == store.id, ImportJob.kind == "listings")
    ) or 0
    linked_products = select(Listing.product_id).where(Listing.store_id == store.id, Listing.product_id.is_not(None))
    # An import's starting stock is not the shop entering a stock (step 6 asks for a change by the shop).
    stock_edited = db.session.scalar(
        select(
            exists().where(
                StockHistory.product_id.in_(linked_products),
                StockHistory.kind != int(StockChangeKind.LISTING_IMPORT),
            )
        )
    )
    pushed_ok = db.session.scalar(select(exists().where(SyncAttempt.store_id == store.id, SyncAttempt.ok.is_(True))))
    last_attempt = db.session.scalar(
        select(SyncAttempt).where(SyncAttempt.store_id == store.id).order_by(SyncAttempt.id.desc()).limit(1)
    )
    reflected_count = db.session.scalar(
        select(func.count()).select_from(Listing).where(Listing.store_id == store.id, Listing.reflected.is_(True))
    ) or 0
    unreflected_count = db.session.scalar(
        select(func.count()).select_from(Listing).where(Listing.store_id == store.id, Listing.reflected.is_(False))
    ) or 0

    connection_ok = store.connection_ok is True
    done = [
        application == ApplicationStatus.COMPLETED.value,
        connection_ok,
        imported_files > 0 or listing_count > 0,
        listing_count > 0,
        connection_ok and bool(store.auto_sync) and store.credentials_token is not None,
        bool(stock_edited),
        bool(pushed_ok),
        reflected_count > 0,
    ]
    facts = {
        "apply": {"application": application, "mail_route": mail_route(store)},
        "mall_setup": {"connection_ok": store.connection_ok, "message": store.connection_message,
                       "checked_at": store.connection_checked_at},
        "import": {"listings": listing_count, "linked": linked_count},
        "sync_settings": {"auto_sync": store.auto_sync, "has_credentials": store.credentials_token is not None,
                          "connection_ok": store.connection_ok},
        "history": {"last": last_attempt},
        "reflected": {"reflected": reflected_count, "unreflected": unreflected_count},
    }
    steps = _steps(done, facts)
    checks = troubleshooting(store, application, last_attempt)
    return Progress(store=store, steps=steps, checks=checks)


def _steps(done: list[bool], facts: dict) -> list[Step]:
    steps = [Step(number=i + 1, key=key, done=done[i], facts=facts.get(key, {})) for i, key in enumerate(STEP_KEYS)]
    first_open = next((s for s in steps if not s.done), None)
    if first_open is not None:
        first_open.current = True
    return steps


def troubleshooting(store: Store, application: Optional[str], last_attempt: Optional[SyncAttempt]) -> list[Check]:
    """The three troubleshooting checks, answered automatically where the state tells:
    ログインID・パスワード (the connection test or a login error), 商品情報の相違 (an unknown item at the mall),
    自動在庫同期申請 (a 設定完了 application covering the store's mall)."""
    login: Optional[bool] = store.connection_ok
    if last_attempt is not None and not last_attempt.ok and last_attempt.hint == "login":
        login = False
    item: Optional[bool] = None
    if last_attempt is not None:
        item = not (not last_attempt.ok and last_attempt.hint == "item")
    item_errors = db.session.scalar(
        select(exists().where(Listing.store_id == store.id, Listing.reflection_error.is_not(None)))
    )
    if item_errors:
        item = False
    return [
        Check("login", login),
        Check("item", item),
        Check("application", application == ApplicationStatus.COMPLETED.value),
    ]


def all_progress() -> list[Progress]:
    """One progress per store (oldest store first); a single store-less progress before the first store."""
    stores = db.session.scalars(select(Store).order_by(Store.id)).all()
    if not stores:
        return [progress(None)]
    return [progress(store) for store in stores]
