"""Mall credentials, encrypted at rest with the instance's credential key (Fernet).

Only this module turns a store's secret into plaintext; pages show 設定済み, logs show nothing.
Several keys may be configured, newest first (MultiFernet): secrets are written with the newest and read
with any, so `flask --app app rotate-credential-key` can bring in a new key while the app runs.
"""
from __future__ import annotations

import json
import logging

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from tatenpo.models import Store
from tatenpo.platform import instance
from tatenpo.platform.extensions import db

log = logging.getLogger(__name__)


class CredentialKeyError(RuntimeError):
    """The stored secret was encrypted with another key (instance/credential.key was replaced). Its text is
    for the shop, in the user's language."""

    def __init__(self, store_id: int | None = None) -> None:
        self.store_id = store_id
        super().__init__(_l("The stored credentials cannot be decrypted (the credential key was replaced). "
                            "Enter them again."))

    def __str__(self) -> str:
        return str(self.args[0])


def keys() -> list[str]:
    """The credential keys, newest first. Read from instance/credential.key at each use when that is where
    they come from: a rotation by another process takes effect here without a restart."""
    if current_app.config.get("CREDENTIAL_KEY_FILE"):
        found = instance.read_credential_keys(current_app.instance_path)
        if found:
            return found
    return instance.split_keys(current_app.config["CREDENTIAL_KEY"])


def _fernet(key_list: list[str] | None = None) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in (key_list or keys())])
    except ValueError as exc:  # a damaged key file or variable: nothing stored can be read with it
        raise CredentialKeyError() from exc


def read(store: Store) -> dict[str, str]:
    if not store.credentials_token:
        return {}
    try:
        return json.loads(_fernet().decrypt(store.credentials_token.encode()))
    except InvalidToken as exc:
        log.warning("credentials of store %s cannot be decrypted with the configured keys", store.id)
        raise CredentialKeyError(store.id) from exc


def write(store: Store, values: dict[str, str], *, keep_blank: bool = True) -> None:
    """Merge `values` into the store's secret. A blank value keeps what is stored (a form field left empty
    must never erase a password), unless keep_blank is False. A secret no key can read any more is replaced
    by what is entered: entering the credentials again is how the shop recovers from a lost key."""
    try:
        merged = read(store)
    except CredentialKeyError:
        merged = {}
    for key, value in values.items():
        if value is None or value == "":
            if not keep_blank:
                merged.pop(key, None)
            continue
        merged[key] = str(value)
    store.credentials_token = _fernet().encrypt(json.dumps(merged).encode()).decode()


def configured_keys(store: Store) -> set[str]:
    """Which credential fields are set (for 設定済み), without exposing their values."""
    return {key for key, value in read(store).items() if value}


def reencrypt_all(key_list: list[str]) -> int:
    """Encrypt every store's secret again with the first of `key_list` (read with any of them); the caller
    commits. Raises CredentialKeyError, changing nothing, when a secret can be read with none of them."""
    fernet = _fernet(key_list)
    count = 0
    for store in db.session.scalars(
            select(Store).where(Store.credentials_token.is_not(None)).order_by(Store.id)):
        if not store.credentials_token:
            continue
        try:
            store.credentials_token = fernet.rotate(store.credentials_token.encode()).decode()
        except InvalidToken as exc:
            raise CredentialKeyError(store.id) from exc
        count += 1
    return count


def keys_in_use(key_list: list[str]) -> set[str]:
    """Which of `key_list` some store's secret is encrypted with now."""
    used = set()
    for token in db.session.scalars(
            select(Store.credentials_token).where(Store.credentials_token.is_not(None))):
        for key in key_list:
            try:
                Fernet(key.encode()).decrypt(token.encode())
            except InvalidToken:
                continue
            used.add(key)
            break
    return used
