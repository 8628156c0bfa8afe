"""EC sites (stores): creating and changing them. Changing what decides the pushed quantity (保留在庫,
自動在庫同期区分) re-schedules the store's listings in the same transaction."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import update

from tatenpo import malls
from tatenpo.malls.rakuten_ftp import TRUSTED_HOST_KEY
from tatenpo.models import Store, SyncEntry, utcnow
from tatenpo.platform import credentials
from tatenpo.platform.extensions import db
from tatenpo.setup import endpoints
from tatenpo.stock import inventory


class StoreError(ValueError):
    def __init__(self, message) -> None:
        super().__init__(str(message))
        self.message = message


def parse_mall(value: str) -> str:
    """The store's mall key, checked against the registry of malls."""
    if value not in malls.keys():
        raise StoreError(
            _l("Unknown mall “%(mall)s”. Choose one of: %(choices)s.", mall=value, choices=", ".join(malls.keys()))
        )
    return value


def create_store(
    mall: str,
    name: str,
    *,
    endpoint: Optional[str] = None,
    credential_values: Optional[dict[str, str]] = None,
    auto_sync: bool = False,
    immediate_sync: bool = False,
    safety_stock: int = 0,
) -> Store:
    key = parse_mall(mall)
    if not name or not name.strip():
        raise StoreError(_l("Enter the store name."))
    if safety_stock < 0:
        raise StoreError(_l("Safety stock cannot be negative."))
    store = Store(
        mall=key,
        name=name.strip(),
        endpoint=_checked_endpoint(key, endpoint),
        auto_sync=auto_sync,
        immediate_sync=immediate_sync,
        safety_stock=safety_stock,
        settings={},
    )
    db.session.add(store)
    if credential_values:
        credentials.write(store, credential_values)
    db.session.flush()
    return store


def _checked_endpoint(mall: str, endpoint: Optional[str]) -> Optional[str]:
    try:
        return endpoints.check(mall, endpoint)
    except endpoints.EndpointRefused as exc:
        raise StoreError(exc.message) from None


def _drop_secrets_not_entered(store: Store, entered: dict) -> None:
    secret_keys = {field.key for field in malls.credential_fields(store.mall) if field.secret}
    try:
        kept = {key: value for key, value in credentials.read(store).items() if key not in secret_keys}
    except credentials.CredentialKeyError:
        kept = {}
    kept.update({key: value for key, value in entered.items() if value})
    store.credentials_token = None
    if kept:
        credentials.write(store, kept)


def _access_changes(store: Store, changes: dict) -> bool:
    """Would these changes reach the mall differently (another endpoint, another credential)?"""
    if "endpoint" in changes and (changes["endpoint"] or None) != store.endpoint:
        return True
    new = {key: value for key, value in (changes.get("credentials") or {}).items() if value}
    if not new:
        return False
    try:
        saved = credentials.read(store)
    except credentials.CredentialKeyError:
        return True
    return any(saved.get(key) != value for key, value in new.items())


def trusted_host_key(store: Store) -> Optional[str]:
    return (store.settings or {}).get(TRUSTED_HOST_KEY)


def trust_host_key(store: Store, key: str) -> None:
    store.settings = {**(store.settings or {}), TRUSTED_HOST_KEY: key}  # a new dict: the JSON column sees the change


def connector_options(store: Store, config: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    """What the store's connector takes besides the credentials, as its mall declares: what the store itself
    hands over (the SFTP host key it trusts) and, given the app's `config`, the operators' tuning."""
    return malls.mall(store.mall).options_from(store.settings or {}, config or {})


def forget_host_key(store: Store) -> None:
    """After Rakuten announces a new key: the next 接続テスト trusts whatever key the server presents."""
    if trusted_host_key(store) is not None:
        store.settings = {k: v for k, v in store.settings.items() if k != TRUSTED_HOST_KEY}


def update_store(store: Store, **changes) -> Store:
    """Apply changes; re-schedule the store's listings when the pushed quantity may have changed.

    New credentials or a new endpoint make the last 接続テスト meaningless (it is cleared), and bring entries
    parked by a failure (a wrong password waits an hour) due again at once: the shop just fixed the cause."""
    reschedule = False
    for key in ("auto_sync", "safety_stock"):
        if key in changes and changes[key] != getattr(store, key):
            reschedule = True
    if "safety_stock" in changes and changes["safety_stock"] is not None and changes["safety_stock"] < 0:
        raise StoreError(_l("Safety stock cannot be negative."))
    if "endpoint" in changes:
        changes["endpoint"] = _checked_endpoint(store.mall, changes["endpoint"])
    access_changed = _access_changes(store, changes)
    endpoint_before = store.endpoint
    moved = "endpoint" in changes and changes["endpoint"] != endpoint_before
    if moved:
        # The stored secrets were given for the old address: they go to a new one only when entered again in
        # this same save, so changing the endpoint alone can never send them elsewhere.
        _drop_secrets_not_entered(store, changes.get("credentials") or {})
    for key, value in changes.items():
        if key == "credentials":
            credentials.write(store, value or {})
        else:
            setattr(store, key, value)
    if moved:
        forget_host_key(store)  # another server: its key is confirmed again by the next 接続テスト
    if access_changed:
        store.connection_ok = store.connection_checked_at = store.connection_message = None
        db.session.execute(
            update(SyncEntry).where(SyncEntry.store_id == store.id).values(due_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        db.session.info.setdefault(inventory.STORES_CHANGED, set()).add(store.id)
    db.session.flush()
    if reschedule:
        inventory.schedule_store(store)
    return store
