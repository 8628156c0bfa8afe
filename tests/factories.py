"""Domain objects for tests, so each test states only what matters to it (CTFd's gen_* helpers)."""
from __future__ import annotations

import itertools

from sqlalchemy import select

from tatenpo.models import Listing, Product, Store, SupportApplication, User
from tatenpo.platform import credentials
from tatenpo.platform.extensions import db

_counter = itertools.count(1)


class Factory:
    def __init__(self, app):
        self.app = app

    def _save(self, obj):
        with self.app.app_context():
            db.session.add(obj)
            db.session.commit()
            db.session.refresh(obj)
            db.session.expunge(obj)
        return obj

    def user(self, email=None, password="correct horse battery", role="staff", locale="ja") -> User:
        email = email or f"user{next(_counter)}@example.jp"
        with self.app.app_context():
            existing = db.session.scalar(select(User).where(User.email == email))
            if existing:
                db.session.expunge(existing)
                return existing
        user = User(email=email, role=role, locale=locale)
        user.set_password(password)
        self.app.extensions.pop("tatenpo.has_users", None)
        return self._save(user)

    def store(self, mall="rakuten", name=None, auto_sync=True, safety_stock=0, endpoint=None, secrets=None, **fields) -> Store:
        store = Store(
            mall=mall, name=name or f"テスト店舗{next(_counter)}", auto_sync=auto_sync,
            safety_stock=safety_stock, endpoint=endpoint, **{"settings": {}, **fields},
        )
        with self.app.app_context():
            db.session.add(store)
            if secrets:
                credentials.write(store, secrets)
            db.session.commit()
            db.session.refresh(store)
            db.session.expunge(store)
        return store

    def product(self, code=None, name="テスト商品", on_hand=0, allocated=0, **fields) -> Product:
        product = Product(code=code or f"P{next(_counter):05d}", name=name, on_hand=on_hand, allocated=allocated, **fields)
        product.refresh_search_text()
        return self._save(product)

    def listing(self, store, product=None, item_code=None, variant_code="", code=None, **fields) -> Listing:
        item_code = item_code or f"item-{next(_counter)}"
        listing = Listing(
            store_id=store.id,
            product_id=product.id if product is not None else None,
            item_code=item_code,
            variant_code=variant_code,
            code=code or (product.code if product is not None else item_code),
            title=fields.pop("title", "テスト販売データ"),
            attributes=fields.pop("attributes", {}),
            **fields,
        )
        listing.refresh_search_text()
        return self._save(listing)

    def application(self, malls=("rakuten",), status="completed", **fields) -> SupportApplication:
        application = SupportApplication(
            company=fields.pop("company", "株式会社テスト"),
            contact_name=fields.pop("contact_name", "山田 太郎"),
            malls=list(malls),
            application_type=fields.pop("application_type", "自動受注メール取込・自動在庫同期を開始する"),
            status=status,
            **fields,
        )
        return self._save(application)

    def attempt(self, store, listing=None, ok=True, quantity=1, **fields):
        """One push of one listing as the sync engine records it (a SyncRun with one SyncAttempt, and the
        listing's ✗ mark kept as the push keeps it: sync.push.mark_newest)."""
        from tatenpo.models import SyncAttempt, SyncRun
        from tatenpo.sync.push import mark_newest

        with self.app.app_context():
            run = SyncRun(store_id=store.id, trigger="schedule", status="success" if ok else "failed")
            db.session.add(run)
            db.session.flush()
            attempt = SyncAttempt(
                run_id=run.id, store_id=store.id, listing_id=listing.id if listing is not None else None,
                listing_code=fields.pop("listing_code", listing.code if listing is not None else "x"),
                quantity=quantity, ok=ok, **fields,
            )
            db.session.add(attempt)
            db.session.flush()
            mark_newest([{"listing_id": attempt.listing_id, "ok": attempt.ok}])
            db.session.commit()
            db.session.refresh(attempt)
            db.session.expunge(attempt)
        return attempt
