"""Mall credentials are encrypted at rest and never shown back."""
from __future__ import annotations

from sqlalchemy import text

from tatenpo.models import Store
from tatenpo.platform import credentials
from tatenpo.platform.extensions import db


def test_the_raw_database_holds_no_plaintext_secret(app, make):
    store = make.store(secrets={"licenseKey": "SP-LICENSE-abcdef", "serviceSecret": "SERVICE-SECRET-123456"})
    with app.app_context():
        raw = db.session.execute(text("SELECT * FROM stores")).all()
        dump = repr(raw)
        assert "SP-LICENSE-abcdef" not in dump and "SERVICE-SECRET-123456" not in dump
        assert credentials.read(db.session.get(Store, store.id))["licenseKey"] == "SP-LICENSE-abcdef"


def test_a_blank_value_keeps_the_stored_secret(app, make):
    store = make.store(secrets={"login_id": "shop", "password": "pass-1"})
    with app.app_context():
        row = db.session.get(Store, store.id)
        credentials.write(row, {"login_id": "shop2", "password": ""})
        db.session.commit()
        assert credentials.read(row) == {"login_id": "shop2", "password": "pass-1"}
        assert credentials.configured_keys(row) == {"login_id", "password"}


def test_store_repr_never_contains_credentials(app, make):
    store = make.store(secrets={"password": "hunter2-secret"})
    with app.app_context():
        assert "hunter2" not in repr(db.session.get(Store, store.id))
