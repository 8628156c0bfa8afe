"""Mall credentials are encrypted at rest and never shown back."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from tatenpo.models import Store
from tatenpo.platform import credentials
from tatenpo.platform.extensions import db
from tatenpo.setup import stores


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


# --- a key that cannot decrypt, and rotating the key ------------------------------------------------------


def test_a_key_that_cannot_decrypt_gives_a_failed_run_that_says_so_not_a_failed_job(app, make, sandbox):
    from cryptography.fernet import Fernet
    from rq import Queue, SimpleWorker
    from sqlalchemy import select

    from tatenpo.models import SyncRun
    from tatenpo.platform import tasks
    from tatenpo.platform.redis_conn import redis
    from tatenpo.stock import inventory

    remote = sandbox.create_store("rakuten", items=1)
    item = sandbox.items(remote["id"])[0]
    store = make.store(mall="rakuten", endpoint=remote["endpoint"], secrets=remote["credentials"])
    make.application(malls=("rakuten",))
    product = make.product(on_hand=5)
    make.listing(store, product, item_code=item["code"], variant_code=item["variant"], code=item["sku"])
    with app.app_context():
        inventory.set_stock(product.id, 3)
        db.session.commit()
    app.config["CREDENTIAL_KEY"] = Fernet.generate_key().decode()  # instance/credential.key was replaced
    with app.app_context():
        job = tasks.enqueue("tatenpo.jobs.push_store", store.id, "schedule", queue_name="sync")
        SimpleWorker([Queue("sync", connection=redis())], connection=redis()).work(burst=True)
        assert job.get_status(refresh=True) == "finished"  # not an RQ failure retried at every sweep
        run = db.session.scalars(select(SyncRun).where(SyncRun.store_id == store.id)).one()
        assert run.status == "failed"
        assert "暗号鍵" in run.message or "復号" in run.message, run.message
        assert db.session.get(Store, store.id).consecutive_failures >= 1

        # The fix the message names: enter the credentials again, and the next push goes through.
        stores.update_store(db.session.get(Store, store.id), credentials=remote["credentials"])
        db.session.commit()
        assert credentials.read(db.session.get(Store, store.id)) == remote["credentials"]
    assert sandbox.stock(remote["id"])[(item["code"], item["variant"])] == item["quantity"]  # nothing pushed


@pytest.fixture
def key_file_app(tmp_path, monkeypatch):
    """An app whose credential keys come from instance/credential.key, as `make run`'s do."""
    from tatenpo import create_app

    monkeypatch.setenv("TATENPO_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.delenv("CREDENTIAL_KEY", raising=False)
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite:///" + str(tmp_path / "keys.db"),
                      "SECRET_KEY": "test-secret", "REDIS_URL": "unix:///nonexistent"})
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _key_lines(app) -> list[str]:
    return (Path(app.instance_path) / "credential.key").read_text().split()


def _secrets(app, store_ids) -> list[dict]:
    with app.app_context():
        return [credentials.read(db.session.get(Store, store_id)) for store_id in store_ids]


def test_rotating_keeps_every_secret_readable_and_retiring_drops_the_old_key(key_file_app):
    from cryptography.fernet import Fernet

    from tatenpo import create_app

    from .factories import Factory

    make = Factory(key_file_app)
    stores = [make.store(mall="rakuten", secrets={"service_secret": f"SP-{n}", "license_key": f"SL-{n}"})
              for n in range(3)]
    ids = [s.id for s in stores]
    expected = _secrets(key_file_app, ids)
    [old_key] = _key_lines(key_file_app)
    # A process started before the rotation (its configuration holds the old key only), like a running worker.
    running = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": key_file_app.config["SQLALCHEMY_DATABASE_URI"],
                          "SECRET_KEY": "test-secret", "REDIS_URL": "unix:///nonexistent"})
    assert running.config["CREDENTIAL_KEY"] == old_key

    result = key_file_app.test_cli_runner().invoke(args=["rotate-credential-key"])
    assert result.exit_code == 0, result.output
    new_key, kept = _key_lines(key_file_app)
    assert kept == old_key and new_key != old_key
    assert _secrets(key_file_app, ids) == expected and _secrets(running, ids) == expected
    with key_file_app.app_context():
        for store_id in ids:  # encrypted with the new key alone now
            Fernet(new_key.encode()).decrypt(db.session.get(Store, store_id).credentials_token.encode())

    result = key_file_app.test_cli_runner().invoke(args=["rotate-credential-key", "--retire-old"])
    assert result.exit_code == 0, result.output
    assert _key_lines(key_file_app) == [new_key]
    assert _secrets(key_file_app, ids) == expected and _secrets(running, ids) == expected
    assert stat.S_IMODE((Path(key_file_app.instance_path) / "credential.key").stat().st_mode) == 0o600


def test_rotating_refuses_and_changes_nothing_when_a_secret_cannot_be_read(key_file_app):
    from cryptography.fernet import Fernet

    from .factories import Factory

    store = Factory(key_file_app).store(mall="rakuten", secrets={"service_secret": "SP-1"})
    with key_file_app.app_context():
        row = db.session.get(Store, store.id)
        row.credentials_token = Fernet(Fernet.generate_key()).encrypt(b"{}").decode()  # from a lost key
        db.session.commit()
        token = row.credentials_token
    before = _key_lines(key_file_app)
    result = key_file_app.test_cli_runner().invoke(args=["rotate-credential-key"])
    assert result.exit_code != 0 and f"store {store.id}" in result.output and "Nothing was changed" in result.output
    assert _key_lines(key_file_app) == before
    with key_file_app.app_context():
        assert db.session.get(Store, store.id).credentials_token == token


def test_keys_set_in_the_environment_are_not_rotated_behind_its_back(app, make):
    store = make.store(secrets={"password": "pass-1"})
    with app.app_context():
        token = db.session.get(Store, store.id).credentials_token
    result = app.test_cli_runner().invoke(args=["rotate-credential-key"])
    assert result.exit_code != 0 and "CREDENTIAL_KEY=" in result.output and "--retire-old" in result.output
    with app.app_context():
        assert db.session.get(Store, store.id).credentials_token == token
