"""One registry of malls (tatenpo.malls.CONNECTORS) drives every place that names a mall: the settings' mall
choice, the support center's application, the database's CHECK, `flask stores add --mall`; and one more line in
the registry is a mall the settings offer."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from flask_babel import force_locale
from sqlalchemy import create_engine, inspect, select, text

from tatenpo import malls
from tatenpo.malls.base import Connector, CredentialField
from tatenpo.models import Store
from tatenpo.platform.extensions import db
from tatenpo.setup import stores

ROOT = Path(__file__).resolve().parent.parent


class RakumaConnector(Connector):
    """A sixth mall as its module would declare it (never connected here: only the pages read it)."""

    key = "rakuma"
    label = "ラクマ (API)"
    family = "rakuma"
    family_name = "ラクマ"
    default_endpoint = "https://api.rakuma.example"
    credential_fields = (CredentialField("api_token", "Rakuma API token"),)
    preparation = "ラクマ: an API token for your shop."
    max_batch = 100


@pytest.fixture
def rakuma(monkeypatch):
    monkeypatch.setattr(malls, "CONNECTORS", [*malls.CONNECTORS, RakumaConnector])
    return RakumaConnector


def test_every_registered_mall_is_a_choice_in_the_settings(client, auth):
    auth.login()
    page = client.get("/settings/stores/new").get_data(as_text=True)
    for connector in malls.CONNECTORS:
        assert f'href="/settings/stores/new/{connector.key}"' in page
        assert connector.label in page


def test_the_support_application_offers_each_mall_once_whatever_its_routes(client, auth):
    auth.login()
    page = client.get("/support/apply").get_data(as_text=True)
    assert malls.families() == ["rakuten", "yahoo", "amazon", "shopify"]
    for family in malls.families():
        assert f'value="{family}"' in page and malls.family_name(family) in page
    assert 'value="rakuten-ftp"' not in page


def test_a_store_can_be_made_for_each_registered_mall_and_for_no_other(app):
    with app.app_context():
        for key in malls.keys():
            stores.create_store(key, f"{key}の店")
        db.session.commit()
        assert sorted(db.session.scalars(select(Store.mall))) == sorted(malls.keys())
        with pytest.raises(stores.StoreError):
            stores.create_store("ebay", "eBayの店")
        db.session.rollback()
        assert db.session.scalar(select(db.func.count()).select_from(Store)) == len(malls.keys())


def test_a_new_mall_needs_no_migration_the_migrated_database_takes_any_registered_key(tmp_path):
    """The registry is the one list of malls: the migrated schema holds none that a new mall would have to
    widen."""
    url = "sqlite:///" + str(tmp_path / "migrated.db")
    env = dict(os.environ, DATABASE_URL=url, TATENPO_INSTANCE=str(tmp_path))
    upgraded = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
    assert upgraded.returncode == 0, upgraded.stderr
    engine = create_engine(url)
    try:
        checks = {c["name"]: c["sqltext"] for c in inspect(engine).get_check_constraints("stores")}
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO stores (mall, name, auto_sync, immediate_sync, safety_stock, "
                                    "settings, consecutive_failures, created_at, updated_at) VALUES "
                                    "('new-mall', 'x', 0, 0, 0, '{}', 0, '2026-01-01', '2026-01-01')"))
    finally:
        engine.dispose()
    assert not any("mall in" in sql for sql in checks.values())


def test_the_setup_guide_says_what_each_registered_mall_needs(client, auth, app, make):
    auth.login()
    for connector in malls.CONNECTORS:
        store = make.store(mall=connector.key)
        page = client.get(f"/guide?store={store.id}").get_data(as_text=True)
        with app.test_request_context(), force_locale("ja"):
            assert str(connector.preparation) in page


@pytest.mark.parametrize("key", malls.keys())
def test_stores_add_takes_each_registered_mall(runner, app, key):
    result = runner.invoke(args=["stores", "add", "--mall", key, "--name", f"{key}の店"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.get(Store, int(result.output)).mall == key


def test_one_line_in_the_registry_adds_a_mall_to_the_settings(client, auth, app, rakuma):
    app.config["SANDBOX_URL"] = "http://127.0.0.1:9"  # no sandbox: the form says so and still renders
    auth.login()
    choices = client.get("/settings/stores/new").get_data(as_text=True)
    assert 'href="/settings/stores/new/rakuma"' in choices and "ラクマ (API)" in choices
    form = client.get("/settings/stores/new/rakuma")
    assert form.status_code == 200
    page = form.get_data(as_text=True)
    assert "Rakuma API token" in page and "https://api.rakuma.example" in page
