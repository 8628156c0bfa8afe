"""The shop's world as tables: stores, products, listings, stock history, the sync schedule and its history,
support applications and listing imports. See PRODUCT.md "Domain" for what each one means to the shop.

Times are naive UTC (`utcnow()`); pages convert them to the configured zone (Asia/Tokyo by default).
Integrity lives in the database too: unique codes, non-negative quantities, foreign keys.
"""
from __future__ import annotations

import enum
import unicodedata
from datetime import datetime, timezone
from typing import Any, Optional

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
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from tatenpo.platform.extensions import db


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
    STAFF = "staff"  # the shop
    SUPPORT = "support"  # サポートセンター


class Mall(str, enum.Enum):
    """The malls a store can be on; the value is what the CLI and the database use."""

    RAKUTEN = "rakuten"  # RMS Inventory API 2.0
    RAKUTEN_FTP = "rakuten-ftp"  # CSV upload to /ritem/batch, results in /ritem/logs
    YAHOO = "yahoo"
    AMAZON = "amazon"
    SHOPIFY = "shopify"

    @property
    def family(self) -> str:
        """The mall itself, whatever the route (an application covers 楽天市場, not a protocol)."""
        return "rakuten" if self in (Mall.RAKUTEN, Mall.RAKUTEN_FTP) else self.value


class StockChangeKind(enum.IntEnum):
    """Stable integers: history rows outlive any renaming in code."""

    MANUAL = 1
    STOCK_CSV = 2
    LISTING_IMPORT = 3
    ORDER = 4
    CANCELLATION = 5
    CORRECTION = 6


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
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    last_failed_login_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (CheckConstraint("role in ('staff', 'support')", name="role"),)

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_support(self) -> bool:
        return self.role == Role.SUPPORT.value

    def __repr__(self) -> str:
        return f"<User {self.id} {self.role}>"


class Store(db.Model):
    """ECサイト / 店舗: one shop on one mall. A company may have several stores on the same mall."""

    __tablename__ = "stores"

    id: Mapped[int] = mapped_column(primary_key=True)
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
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    listings: Mapped[list["Listing"]] = relationship(back_populates="store", passive_deletes=True)

    __table_args__ = (
        CheckConstraint("safety_stock >= 0", name="safety_stock"),
        CheckConstraint(
            "mall in ('rakuten', 'rakuten-ftp', 'yahoo', 'amazon', 'shopify')", name="mall"
        ),
        CheckConstraint(
            "sync_interval_seconds is null or sync_interval_seconds >= 10", name="sync_interval"
        ),
    )

    @property
    def mall_kind(self) -> Mall:
        return Mall(self.mall)

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
    # Bumped by every stock mutation; also the row lock taken first (see inventory.lock_product).
    version: Mapped[int] = mapped_column(Integer, default=0)
    search_text: Mapped[str] = mapped_column(String(800), default="", index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    listings: Mapped[list["Listing"]] = relationship(back_populates="product")

    __table_args__ = (
        CheckConstraint("on_hand >= 0", name="on_hand"),
        CheckConstraint("allocated >= 0", name="allocated"),
    )

    @property
    def sellable(self) -> int:
        """販売可能数 = 在庫数 − 引当数 (never below zero)."""
        return max(0, self.on_hand - self.allocated)

    def refresh_search_text(self) -> None:
        self.search_text = search_key(self.code, self.name)

    def __repr__(self) -> str:
        return f"<Product {self.code!r} on_hand={self.on_hand}>"


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
    search_text: Mapped[str] = mapped_column(String(1100), default="", index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    store: Mapped[Store] = relationship(back_populates="listings")
    product: Mapped[Optional[Product]] = relationship(back_populates="listings")

    __table_args__ = (
        UniqueConstraint("store_id", "item_code", "variant_code", name="uq_listings_identity"),
        Index("ix_listings_store_code", "store_id", "code"),
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
    target, so a push that finishes after a newer change closes nothing (see sync.py).
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
    listing_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("listings.id", ondelete="SET NULL"), index=True
    )
    listing_code: Mapped[str] = mapped_column(String(255))
    product_code: Mapped[Optional[str]] = mapped_column(String(255))
    quantity: Mapped[int] = mapped_column(Integer)
    entry_version: Mapped[Optional[int]] = mapped_column(Integer)
    ok: Mapped[bool] = mapped_column(Boolean)
    will_retry: Mapped[bool] = mapped_column(Boolean, default=False)  # transient: the entry stays due
    message: Mapped[Optional[str]] = mapped_column(Text)
    error_code: Mapped[Optional[str]] = mapped_column(String(64))
    # Which of the seed's three checks applies: 'login' / 'item' / 'application'.
    hint: Mapped[Optional[str]] = mapped_column(String(16))
    reflected: Mapped[Optional[bool]] = mapped_column(Boolean)
    read_back_quantity: Mapped[Optional[int]] = mapped_column(Integer)
    read_back_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    run: Mapped[SyncRun] = relationship(back_populates="attempts")
    listing: Mapped[Optional[Listing]] = relationship()

    __table_args__ = (Index("ix_sync_attempts_store_created", "store_id", "created_at"),)


class SupportApplication(db.Model):
    """申請: 「自動受注メール取込・自動在庫同期開始申請」 to the サポートセンター (fields as in the seed)."""

    __tablename__ = "support_applications"

    id: Mapped[int] = mapped_column(primary_key=True)
    company: Mapped[str] = mapped_column(String(200))  # 会社名
    contact_name: Mapped[str] = mapped_column(String(100))  # ご担当者名
    contact_email: Mapped[Optional[str]] = mapped_column(String(254))  # ご担当者メールアドレス
    malls: Mapped[list[str]] = mapped_column(JSON, default=list)  # 在庫同期申請モール (Mall.family values)
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
    kind: Mapped[str] = mapped_column(String(16), default="listings")  # listings / stock
    store_id: Mapped[Optional[int]] = mapped_column(ForeignKey("stores.id", ondelete="SET NULL"))
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    filename: Mapped[str] = mapped_column(String(255))
    stored_path: Mapped[Optional[str]] = mapped_column(String(1000))  # the upload, kept until imported
    file_size: Mapped[int] = mapped_column(BigInteger, default=0)
    file_sha256: Mapped[Optional[str]] = mapped_column(String(64))
    format: Mapped[Optional[str]] = mapped_column(String(40))
    encoding: Mapped[Optional[str]] = mapped_column(String(20))
    # uploaded → previewed → queued → running → done | failed
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
