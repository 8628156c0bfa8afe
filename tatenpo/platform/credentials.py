"""Mall credentials, encrypted at rest with the instance's credential key (Fernet).

Only this module turns a store's secret into plaintext; pages show 設定済み, logs show nothing.
"""
from __future__ import annotations

import json

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app

from tatenpo.models import Store


class CredentialKeyError(RuntimeError):
    """The stored secret was encrypted with another key (instance/credential.key was replaced)."""


def _fernet() -> Fernet:
    return Fernet(current_app.config["CREDENTIAL_KEY"].encode())


def read(store: Store) -> dict[str, str]:
    if not store.credentials_token:
        return {}
    try:
        return json.loads(_fernet().decrypt(store.credentials_token.encode()))
    except InvalidToken as exc:
        raise CredentialKeyError(f"credentials of store {store.id} cannot be decrypted") from exc


def write(store: Store, values: dict[str, str], *, keep_blank: bool = True) -> None:
    """Merge `values` into the store's secret. A blank value keeps what is stored (a form field left empty
    must never erase a password), unless keep_blank is False."""
    merged = read(store)
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
