"""The shop's world as tables: stores, products, listings, stock history, the sync schedule and its history,
support applications and listing imports. docs/GLOSSARY.md says what each one means to the shop.

Times are naive UTC (`utcnow()`); pages convert them to the configured zone (Asia/Tokyo by default).
Integrity lives in the database too: unique codes, non-negative quantities, foreign keys.
"""
from __future__ import annotations

import enum
import unicodedata
from datetime import datetime, timezone
from typing import Any, Optional

from flask_babel import lazy_gettext as _l
from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from tatenpo.platform.extensions import db
from tatenpo.stock import rules


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def search_key(*parts: Optional[str]) -> str:
    """Text for searching that ignores half-/full-width and case (ＡＢＣ１ finds abc1). A caller may fold a
    long part once and append it with a space: NFKC composes nothing across a space, so folding parts apart
    gives the same text as folding them joined (the importer folds a product's title once for its SKUs)."""
    return fold(" ".join(p for p in parts if p))


def fold(text: str) -> str:
    """NFKC + casefold, with a shortcut for plain ASCII (where both change nothing but the case)."""
    return text.lower() if text.isascii() else unicodedata.normalize("NFKC", text).casefold()


class Role(str, enum.Enum):
    ADMIN = "admin"  # the shop's administrator: users, stores and their credentials, and all staff may do
    STAFF = "staff"  # the shop's staff: stock, imports, orders, listings, sync
    SUPPORT = "support"  # サポートセンター: the support applications only


class StockChangeKind(enum.IntEnum):
    """Stable integers: history rows outlive any renaming in code."""

    MANUAL = 1
    STOCK_CSV = 2
    LISTING_IMPORT = 3
    ORDER = 4  # 受注: 引当数 += n
    CANCELLATION = 5  # キャンセル before shipping: 引当数 −= n
    CORRECTION = 6
    SHIPMENT = 7  # 出荷: 在庫数 −= n and 引当数 −= n
    RESTOCK = 8  # 再入庫 of a cancelled or returned order that had shipped
    MALL_SALE = 9  # a fall on a mall that no order explained, booked as a sale (説明のない減少)

    @property
    def label(self) -> str:
        """What the shop calls this kind of change (在庫履歴 on the product and order pages), in its language."""
        return str(STOCK_CHANGE_LABELS[self])


STOCK_CHANGE_LABELS = {
    StockChangeKind.MANUAL: _l("Manual edit"),
    StockChangeKind.STOCK_CSV: _l("Stock CSV"),
    StockChangeKind.LISTING_IMPORT: _l("Listing import"),
    StockChangeKind.ORDER: _l("Order"),
    StockChangeKind.CANCELLATION: _l("Cancellation"),
    StockChangeKind.CORRECTION: _l("Correction"),
    StockChangeKind.SHIPMENT: _l("Shipment"),
    StockChangeKind.RESTOCK: _l("Restock"),
    StockChangeKind.MALL_SALE: _l("Unexplained decrease booked as a sale"),
}


class ApplicationStatus(str, enum.Enum):
    PENDING = "pending"  # 申請中
    COMPLETED = "completed"  # 設定完了
    RETURNED = "returned"  # 差し戻し


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.STAFF.value)
    locale: Mapped[str] = mapped_column(String(8), default="ja")
    # Copied into the session at login; bumping it (logout, password change, disable) ends every session.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    disabled_at: Mapped[Optional[datetime]] = mapped_column(DateTime)  # set: the user cannot log in
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (CheckConstraint("role in ('admin', 'staff', 'support')", name="role"),)

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_support(self) -> bool:
        return self.role == Role.SUPPORT.value

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN.value

    @property
    def is_active(self) -> bool:
        return self.disabled_at is None

    def __repr__(self) -> str:
        return f"<User {self.id} {self.role}>"


class Store(db.Model):
    """ECサイト / 店舗: one shop on one mall. A company may have several stores on the same mall."""

    __tablename__ = "stores"

    id: Mapped[int] = mapped_column(primary_key=True)
    # A key of the mall registry (tatenpo.malls), checked there when a store is made: a new mall needs no
    # migration.
    mall: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    auto_sync: Mapped[bool] = mapped_column(Boolean, default=False)  # 自動在庫同期区分 使用中/停止中
    immediate_sync: Mapped[bool] = mapped_column(Boolean, default=False)  # 即時同期
    endpoint: Mapped[Optional[str]] = mapped_column(String(500))  # None: the real mall's address
    # Fernet token of a JSON object; read and written only through tatenpo.platform.credentials.
    credentials_token: Mapped[Optional[str]] = mapped_column(Text)
    safety_stock: Mapped[int] = mapped_column(Integer, default=0)  # 保留在庫
    sync_interval_seconds: Mapped[Optional[int]] = mapped_column(Integer)  # None: the app default
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # e.g. a generic CSV column map
    # Health, shown on the top page and the settings list.
    last_success_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    last_error_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    last_error: Mapped[Optional[str]] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    connection_checked_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    connection_ok: Mapped[Optional[bool]] = mapped_column(Boolean)
    connection_message: Mapped[Optional[str]] = mapped_column(Text)
    last_drift_check_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    order_mail_address: Mapped[Optional[str]] = mapped_column(String(254))  # issued on 設定完了
    # The secret in the store's HTTP door for inbound-mail services (POST /inbound/mail/<token>).
    inbound_token: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    last_order_mail_at: Mapped[Optional[datetime]] = mapped_column(DateTime)  # the route works while mails come
    # 説明のない減少は販売として扱う: a fall on the mall that no order explains is booked as a sale at once.
    adopt_unexplained_decrease: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The credential that expires (the connector's `credential_lifetime`), kept by tatenpo.setup.credential_dates:
    # when it was entered or renewed and when it expires (None: unknown — stores from before we kept dates, or a
    # mall whose credential does not expire), and the smallest reminder (days before: 14, 7, 1) already mailed
    # for this expiry, so each goes once.
    credentials_renewed_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    credentials_expire_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    credentials_reminded_days: Mapped[Optional[int]] = mapped_column(Integer)
    # 受注API: the mall's order API is read every order_poll_seconds (None: ORDER_POLL_SECONDS) from a cursor (the
    # mall's last-updated time of the newest order seen), by tatenpo.orders.polling; its health like a push's.
    order_api: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    order_poll_seconds: Mapped[Optional[int]] = mapped_column(Integer)
    order_cursor_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    order_polled_at: Mapped[Optional[datetime]] = mapped_column(DateTime)  # last poll that succeeded
    order_poll_error_at: Mapped[Optional[datetime]] = mapped_column(DateTime)  # None while the last poll succeeded
    order_poll_error: Mapped[Optional[str]] = mapped_column(Text)  # the mall's reason
    # Shopify webhooks (orders/create, orders/cancelled, orders/fulfilled) at POST /webhooks/shopify/<token>:
    # whether the route is on, the secret path part, the last delivery taken, and the last registration problem
    # (tatenpo.orders.shopify_webhooks).
    webhooks_on: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    webhook_token: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    last_webhook_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    webhook_error: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    listings: Mapped[list["Listing"]] = relationship(back_populates="store", passive_deletes=True)

    __table_args__ = (
        CheckConstraint("safety_stock >= 0", name="safety_stock"),
        CheckConstraint(
            "sync_interval_seconds is null or sync_interval_seconds >= 10", name="sync_interval"
        ),
    )

    def __repr__(self) -> str:  # never includes credentials
        return f"<Store {self.id} {self.mall} {self.name!r}>"


class Product(db.Model):
    """商品: the central stock unit, keyed by 商品コード."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(500), default="")
    on_hand: Mapped[int] = mapped_column(Integer, default=0)  # 在庫数
    allocated: Mapped[int] = mapped_column(Integer, default=0)  # 引当数
    stock_managed: Mapped[bool] = mapped_column(Boolean, default=True)  # False: 在庫管理しない
    # セット商品: no stock of its own, its 販売可能数 comes from its parts (tatenpo.stock.sets).
    is_set: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Bumped by every stock mutation; also the row lock taken first (see inventory.lock_product).
    version: Mapped[int] = mapped_column(Integer, default=0)
    # Indexed as each database searches it best (tatenpo.stock.search.SEARCH_TEXT_INDEXES): with the code on
    # SQLite, alone on PostgreSQL.
    search_text: Mapped[str] = mapped_column(String(800), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    listings: Mapped[list["Listing"]] = relationship(back_populates="product")
    # A set's parts (empty for an ordinary product); read only when the product is a set.
    parts: Mapped[list["SetPart"]] = relationship(
        foreign_keys="SetPart.set_id", order_by="SetPart.id", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        CheckConstraint("on_hand >= 0", name="on_hand"),
        CheckConstraint("allocated >= 0", name="allocated"),
        CheckConstraint("NOT is_set OR (on_hand = 0 AND allocated = 0)", name="set_holds_no_stock"),
    )

    @property
    def sellable(self) -> int:
        """販売可能数 = 在庫数 − 引当数, negative when oversold (売り越し); a set's is computed from its parts.
        See tatenpo.stock.rules."""
        if self.is_set:
            return rules.set_sellable((part.part.sellable, part.quantity) for part in self.parts)
        return rules.sellable(self.on_hand, self.allocated)

    def refresh_search_text(self) -> None:
        self.search_text = search_key(self.code, self.name)

    def __repr__(self) -> str:
        return f"<Product {self.code!r} on_hand={self.on_hand}>"


class SetPart(db.Model):
    """One part of a セット商品: which ordinary product, and how many of it one set takes."""

    __tablename__ = "set_parts"

    id: Mapped[int] = mapped_column(primary_key=True)
    set_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    part_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    quantity: Mapped[int] = mapped_column(Integer)

    part: Mapped[Product] = relationship(foreign_keys=[part_id], lazy="joined")

    __table_args__ = (
        UniqueConstraint("set_id", "part_id", name="uq_set_parts_pair"),
        Index("ix_set_parts_part_id", "part_id"),
        CheckConstraint("quantity > 0", name="quantity"),
        CheckConstraint("set_id <> part_id", name="not_itself"),
    )


class Listing(db.Model):
    """販売データ: one product as sold on one store, identified the mall's way.

    item_code/variant_code by mall: Rakuten 商品管理番号 / SKU管理番号 (`normal-inventory` for single-SKU
    items); Yahoo code / sub-code ('' when none); Amazon seller-sku / ''; Shopify inventory item id /
    location id. `code` is the SKU-level code shown to the shop and used for linking (販売コード).
    Mall-specific extras (Shopify handle, Rakuten システム連携用SKU番号, …) live in `attributes`.
    """

    __tablename__ = "listings"

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    product_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("products.id", ondelete="SET NULL"), index=True
    )
    item_code: Mapped[str] = mapped_column(String(255))
    variant_code: Mapped[str] = mapped_column(String(255), default="")
    code: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(500), default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sync_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    max_quantity: Mapped[Optional[int]] = mapped_column(Integer)  # cap on what is pushed
    # What the mall showed: from the imported CSV, then from every read-back.
    mall_quantity: Mapped[Optional[int]] = mapped_column(Integer)
    mall_quantity_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    last_pushed_quantity: Mapped[Optional[int]] = mapped_column(Integer)
    last_pushed_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    # 反映済み (True) / 未反映 (False) / not yet checked (None).
    reflected: Mapped[Optional[bool]] = mapped_column(Boolean)
    reflection_checked_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    reflection_deadline: Mapped[Optional[datetime]] = mapped_column(DateTime)  # stop re-reading after
    reflection_error: Mapped[Optional[str]] = mapped_column(Text)  # e.g. a Rakuten FTP log line
    drifted: Mapped[bool] = mapped_column(Boolean, default=False)  # edited directly on the mall
    # What the mall should show now by what Tatenpo knows: the last push, less the sales booked since. A push
    # checks the mall against it first, so it never overwrites a sale whose order has not arrived yet.
    mall_expected: Mapped[Optional[int]] = mapped_column(Integer)
    # The mall showed this much less than expected and no order explained it: waiting for the shop's choice.
    unexplained_decrease: Mapped[Optional[int]] = mapped_column(Integer)
    # What the mall prints for this item on an order (楽天 商品番号, Yahoo code, a SKU): orders match on it.
    order_code: Mapped[str] = mapped_column(String(255), default="", server_default="")
    search_text: Mapped[str] = mapped_column(String(1100), default="", index=True)
    # ✗: the newest push of this listing (its newest SyncAttempt) failed. Kept by sync.push.mark_newest in the
    # transaction that writes the history lines, so the ✗ filters read the few ✗ listings from a partial index
    # (ix_listings_push_failed) instead of checking every failed line of the history for a newer push.
    push_failed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    store: Mapped[Store] = relationship(back_populates="listings")
    product: Mapped[Optional[Product]] = relationship(back_populates="listings")

    __table_args__ = (
        UniqueConstraint("store_id", "item_code", "variant_code", name="uq_listings_identity"),
        Index("ix_listings_store_code", "store_id", "code"),
        Index("ix_listings_store_order_code", "store_id", "order_code"),
        # The ✗ listings alone (a handful of a catalog's), in the order of the 販売データ page (store, code), so
        # SQLite, which has no statistics, takes it over ix_listings_store_code for the ✗ filter. Its WHERE is
        # written as each database renders `Listing.push_failed` (SQLite uses a partial index only for the same
        # term).
        Index("ix_listings_push_failed", "store_id", "code",
              sqlite_where=text("push_failed = 1"), postgresql_where=text("push_failed")),
        # The 未反映 listings alone, the same way (the 未反映 filters, the top page's and the onboarding's counts):
        # `Listing.reflected.is_(False)` as each database renders it.
        Index("ix_listings_unreflected", "store_id", "code",
              sqlite_where=text("reflected IS 0"), postgresql_where=text("reflected IS false")),
        CheckConstraint("max_quantity is null or max_quantity >= 0", name="max_quantity"),
    )

    def refresh_search_text(self) -> None:
        self.search_text = search_key(self.code, self.item_code, self.variant_code, self.title)

    def __repr__(self) -> str:
        return f"<Listing {self.store_id}:{self.item_code}/{self.variant_code}>"


class StockHistory(db.Model):
    """在庫履歴: append-only. Keeps the product code so it survives the product's deletion."""

    __tablename__ = "stock_history"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    product_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("products.id", ondelete="SET NULL"), index=True
    )
    product_code: Mapped[str] = mapped_column(String(255))
    change: Mapped[int] = mapped_column(Integer)
    quantity_after: Mapped[int] = mapped_column(Integer)
    kind: Mapped[int] = mapped_column(Integer)  # StockChangeKind
    allocated_change: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # 引当数 moved by an order
    order_id: Mapped[Optional[int]] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"), index=True)
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)

    user: Mapped[Optional[User]] = relationship()

    __table_args__ = (CheckConstraint("quantity_after >= 0", name="quantity_after"),)

    @property
    def kind_enum(self) -> StockChangeKind:
        return StockChangeKind(self.kind)


class SyncEntry(db.Model):
    """在庫同期スケジュール: what still has to be pushed. At most one row per listing; deleted when pushed.

    Written in the same transaction as the stock change that caused it. `version` grows with every newer
    target, so a push that finishes after a newer change closes nothing (see sync/push.py).
    """

    __tablename__ = "sync_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    listing_id: Mapped[int] = mapped_column(
        ForeignKey("listings.id", ondelete="CASCADE"), unique=True
    )
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    target_quantity: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1)
    due_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[Optional[str]] = mapped_column(Text)
    lease_until: Mapped[Optional[datetime]] = mapped_column(DateTime)  # claimed by a push until then
    leased_by: Mapped[Optional[str]] = mapped_column(String(100))
    # First time a push was held back because the mall showed an unexplained decrease (waiting for its order).
    held_since: Mapped[Optional[datetime]] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    listing: Mapped[Listing] = relationship()

    __table_args__ = (
        Index("ix_sync_entries_store_due", "store_id", "due_at"),
        CheckConstraint("target_quantity >= 0", name="target_quantity"),
    )


class SyncRun(db.Model):
    """One push (or read-back) for one store: the run-level line of 在庫同期履歴."""

    __tablename__ = "sync_runs"
    __table_args__ = (
        # The runs that pushed nothing (a store-level ✗ line of 在庫同期履歴), newest first: few, however
        # many runs a day of immediate pushes writes. sync.status.STORE_LEVEL_FAILURE is the same predicate.
        Index("ix_sync_runs_store_level", "started_at", "id",
              sqlite_where=text("status = 'blocked' OR (status = 'failed' AND total = 0)"),
              postgresql_where=text("status = 'blocked' OR (status = 'failed' AND total = 0)")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("stores.id", ondelete="SET NULL"), index=True
    )
    trigger: Mapped[str] = mapped_column(String(16))  # schedule / immediate / manual / cli / readback
    status: Mapped[str] = mapped_column(String(16), default="running")  # running/success/partial/failed/blocked
    total: Mapped[int] = mapped_column(Integer, default=0)
    succeeded: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    retried: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[Optional[str]] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    finished_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    duration_ms: Mapped[Optional[int]] = mapped_column(Integer)

    store: Mapped[Optional[Store]] = relationship()
    attempts: Mapped[list["SyncAttempt"]] = relationship(back_populates="run")


class SyncAttempt(db.Model):
    """One push of one listing: ✓ or ✗ with the mall's message, then the read-back result."""

    __tablename__ = "sync_attempts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_runs.id", ondelete="CASCADE"), index=True)
    store_id: Mapped[Optional[int]] = mapped_column(ForeignKey("stores.id", ondelete="SET NULL"))
    listing_id: Mapped[Optional[int]] = mapped_column(ForeignKey("listings.id", ondelete="SET NULL"))
    listing_code: Mapped[str] = mapped_column(String(255))
    product_code: Mapped[Optional[str]] = mapped_column(String(255))
    quantity: Mapped[int] = mapped_column(Integer)
    entry_version: Mapped[Optional[int]] = mapped_column(Integer)
    ok: Mapped[bool] = mapped_column(Boolean)
    will_retry: Mapped[bool] = mapped_column(Boolean, default=False)  # transient: the entry stays due
    message: Mapped[Optional[str]] = mapped_column(Text)
    error_code: Mapped[Optional[str]] = mapped_column(String(64))
    # Which troubleshooting check (docs/FLOW.md) applies: 'login' / 'item' / 'application'.
    hint: Mapped[Optional[str]] = mapped_column(String(16))
    reflected: Mapped[Optional[bool]] = mapped_column(Boolean)
    read_back_quantity: Mapped[Optional[int]] = mapped_column(Integer)
    read_back_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    run: Mapped[SyncRun] = relationship(back_populates="attempts")
    listing: Mapped[Optional[Listing]] = relationship()

    __table_args__ = (
        Index("ix_sync_attempts_store_created", "store_id", "created_at"),
        # Months of history at a million listings are tens of millions of rows (migration fa4b5c6d7e8f): the
        # newest attempt of a listing, the history newest first (or of one day), and the few ✗ lines must each
        # be found without reading the rest.
        Index("ix_sync_attempts_listing_newest", "listing_id", "id"),
        Index("ix_sync_attempts_created", "created_at", "id"),
        Index("ix_sync_attempts_failed", "listing_id", "id",
              sqlite_where=text("ok IS 0"), postgresql_where=text("ok IS false")),
        Index("ix_sync_attempts_failed_created", "created_at", "id",
              sqlite_where=text("ok IS 0"), postgresql_where=text("ok IS false")),
    )


class SupportApplication(db.Model):
    """申請: 「自動受注メール取込・自動在庫同期開始申請」 to the サポートセンター (the form's fields, docs/FLOW.md)."""

    __tablename__ = "support_applications"

    id: Mapped[int] = mapped_column(primary_key=True)
    company: Mapped[str] = mapped_column(String(200))  # 会社名
    contact_name: Mapped[str] = mapped_column(String(100))  # ご担当者名
    contact_email: Mapped[Optional[str]] = mapped_column(String(254))  # ご担当者メールアドレス
    malls: Mapped[list[str]] = mapped_column(JSON, default=list)  # 在庫同期申請モール (tatenpo.malls families)
    application_type: Mapped[str] = mapped_column(String(100))  # 在庫同期申請タイプ
    inquiry: Mapped[Optional[str]] = mapped_column(Text)  # お問合せ内容
    note: Mapped[Optional[str]] = mapped_column(Text)  # 備考
    status: Mapped[str] = mapped_column(String(16), default=ApplicationStatus.PENDING.value)
    applicant_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    handled_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    comment: Mapped[Optional[str]] = mapped_column(Text)  # the reason for 差し戻し
    submitted_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    completed_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    applicant: Mapped[Optional[User]] = relationship(foreign_keys=[applicant_id])
    handled_by: Mapped[Optional[User]] = relationship(foreign_keys=[handled_by_id])

    __table_args__ = (
        CheckConstraint("status in ('pending', 'completed', 'returned')", name="status"),
    )


class ImportJob(db.Model):
    """販売取込 / 在庫取込: one uploaded file, its detected format, preview, progress and row errors."""

    __tablename__ = "import_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="listings")  # listings / stock / orders
    store_id: Mapped[Optional[int]] = mapped_column(ForeignKey("stores.id", ondelete="SET NULL"))
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    filename: Mapped[str] = mapped_column(String(255))
    stored_path: Mapped[Optional[str]] = mapped_column(String(1000))  # the upload, kept until imported
    file_size: Mapped[int] = mapped_column(BigInteger, default=0)
    file_sha256: Mapped[Optional[str]] = mapped_column(String(64))
    format: Mapped[Optional[str]] = mapped_column(String(40))
    encoding: Mapped[Optional[str]] = mapped_column(String(20))
    # uploaded → previewing (the worker reads the file) → previewed → queued → running → done | failed
    status: Mapped[str] = mapped_column(String(16), default="uploaded")
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    preview: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # counts
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # first row errors
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    done_rows: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    message: Mapped[Optional[str]] = mapped_column(Text)
    rq_job_id: Mapped[Optional[str]] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    started_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    finished_at: Mapped[Optional[datetime]] = mapped_column(DateTime)

    store: Mapped[Optional[Store]] = relationship()
    user: Mapped[Optional[User]] = relationship()


class Heartbeat(db.Model):
    """Last time a background process did its round (e.g. 'schedule'); /healthz and the top page read it."""

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    detail: Mapped[Optional[str]] = mapped_column(Text)


class OrderStatus(str, enum.Enum):
    """Where a 受注 stands; each move applies its stock rule once (see tatenpo.orders.book)."""

    RECEIVED = "received"  # 受注: its lines allocate (引当数 += n)
    SHIPPED = "shipped"  # 出荷済み: 在庫数 −= n, 引当数 −= n
    CANCELLED = "cancelled"  # キャンセル: the allocation is released (and stock restocked if the shop says so)


class LineStock(str, enum.Enum):
    """What one order line has done to its product's stock so far: the rules move it forward exactly once."""

    NONE = "none"  # 未紐付け (no listing matched) or not stock-managed: nothing moved yet
    ALLOCATED = "allocated"
    SHIPPED = "shipped"
    RELEASED = "released"  # cancelled before shipping: the allocation was given back
    RESTOCKED = "restocked"  # cancelled after shipping and returned to stock (返品・再入庫)


class MailStatus(str, enum.Enum):
    RECEIVED = "received"  # stored, not read yet
    ORDER = "order"  # read: an order (new, or one already known)
    IGNORED = "ignored"  # read: not an order (a cancellation notice, a report, an unknown sender …)
    FAILED = "failed"  # the mall's order mail, but the body could not be read: kept for `orders reparse`


class InboundMail(db.Model):
    """受信メール: a mail that reached a store's issued order-mail address, kept raw before it is read, so a
    parser bug or a crash loses nothing (`orders reparse` replays it)."""

    __tablename__ = "inbound_mails"

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[Optional[int]] = mapped_column(ForeignKey("stores.id", ondelete="SET NULL"), index=True)
    recipient: Mapped[str] = mapped_column(String(254))
    sender: Mapped[str] = mapped_column(String(254), default="")
    subject: Mapped[str] = mapped_column(String(500), default="")
    message_id: Mapped[Optional[str]] = mapped_column(String(500))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer, default=0)
    via: Mapped[str] = mapped_column(String(16))  # smtp / http / shell
    status: Mapped[str] = mapped_column(String(16), default=MailStatus.RECEIVED.value)
    reason: Mapped[Optional[str]] = mapped_column(Text)  # why ignored or failed
    order_id: Mapped[Optional[int]] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    read_at: Mapped[Optional[datetime]] = mapped_column(DateTime)

    store: Mapped[Optional[Store]] = relationship()

    __table_args__ = (
        CheckConstraint("status in ('received', 'order', 'ignored', 'failed')", name="status"),
    )


class Order(db.Model):
    """受注: a sale on a mall, one per mall order number and store, whichever door it came through."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(String(64))  # 受注番号, as the mall prints it
    status: Mapped[str] = mapped_column(String(16), default=OrderStatus.RECEIVED.value, index=True)
    sources: Mapped[list[str]] = mapped_column(JSON, default=list)  # the doors that saw it: mail, api, csv, manual
    ordered_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    shipped_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    cancelled_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    search_text: Mapped[str] = mapped_column(String(2000), default="")
    # What the mall's order API (or webhook, CSV) said last: its own status text ("500 発送済"), its last-updated
    # time (an older report changes nothing), and False for orders the mall fulfils from its own warehouse
    # (Amazon FBA): shown, never allocating (tatenpo.orders.mall_orders).
    mall_status: Mapped[str] = mapped_column(String(64), default="", server_default="")
    mall_updated_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    moves_stock: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    store: Mapped[Store] = relationship()
    lines: Mapped[list["OrderLine"]] = relationship(back_populates="order", order_by="OrderLine.position",
                                                    cascade="all, delete-orphan")

    __table_args__ = (
        UniqueConstraint("store_id", "number", name="uq_orders_store_number"),
        CheckConstraint("status in ('received', 'shipped', 'cancelled')", name="status"),
    )


class OrderLine(db.Model):
    """One item of a 受注: what the mall printed, and the listing (so the product) it matched, or none (未紐付け)."""

    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    item_code: Mapped[str] = mapped_column(String(255), default="")  # as printed: 楽天 商品番号, Yahoo code, SKU
    variant_code: Mapped[str] = mapped_column(String(255), default="")  # 楽天 SKU管理番号, Yahoo sub-code
    choices: Mapped[str] = mapped_column(String(500), default="")  # 項目・選択肢 lines, "カラー:ブルー / サイズ:M"
    title: Mapped[str] = mapped_column(String(500), default="")
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Optional[int]] = mapped_column(Integer)
    listing_id: Mapped[Optional[int]] = mapped_column(ForeignKey("listings.id", ondelete="SET NULL"), index=True)
    product_id: Mapped[Optional[int]] = mapped_column(ForeignKey("products.id", ondelete="SET NULL"), index=True)
    stock: Mapped[str] = mapped_column(String(16), default=LineStock.NONE.value)

    order: Mapped[Order] = relationship(back_populates="lines")
    listing: Mapped[Optional[Listing]] = relationship()
    product: Mapped[Optional[Product]] = relationship()

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity"),
        CheckConstraint("stock in ('none', 'allocated', 'shipped', 'released', 'restocked')", name="stock"),
    )


class WebhookDelivery(db.Model):
    """A mall webhook already taken ("<topic>:<X-Shopify-Event-Id, else X-Shopify-Webhook-Id>"): Shopify delivers
    repeats, and a repeat is answered without doing anything again. Kept for a retention period longer than
    the mall's retry window (tatenpo.orders.shopify_webhooks.KEEP_DAYS)."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    delivery_id: Mapped[str] = mapped_column(String(100))
    topic: Mapped[str] = mapped_column(String(64), default="")
    order_number: Mapped[str] = mapped_column(String(64), default="")
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)

    __table_args__ = (UniqueConstraint("store_id", "delivery_id", name="uq_webhook_deliveries_store_delivery"),)
