"""接続テスト: try a store's credentials against its mall and remember the outcome on the store
(connection_ok / connection_checked_at / connection_message), which the settings list and the setup guide show.
The first successful test of an SFTP store also keeps the server's host key, trusted from then on. The caller
commits."""
from __future__ import annotations

from flask import current_app
from flask_babel import gettext as _

from tatenpo.malls import connector_for
from tatenpo.malls.base import HINT_LOGIN, LoginCheck, MallError, hint_text
from tatenpo.models import Store, utcnow
from tatenpo.platform import credentials
from tatenpo.platform.redis_conn import redis
from tatenpo.setup import credential_dates, stores

CHECK_TIMEOUT_SECONDS = 10.0


def check(store: Store) -> LoginCheck:
    try:
        values = credentials.read(store)
    except credentials.CredentialKeyError:
        result = LoginCheck(False, _("The stored credentials cannot be decrypted (the credential key was replaced). "
                                     "Enter them again."), "login")
    else:
        # A person is waiting for the answer: one try, at most 10 seconds per call.
        timeout = min(float(current_app.config["MALL_TIMEOUT_SECONDS"]), CHECK_TIMEOUT_SECONDS)
        connector = connector_for(store.mall, store.endpoint, values, _redis_or_none(), timeout, retries=0,
                                  **stores.connector_options(store))
        try:
            result = connector.check_login()
        finally:
            connector.close()
        if result.ok and result.host_key and not stores.trusted_host_key(store):
            stores.trust_host_key(store, result.host_key)  # trusted on first use (malls/rakuten_ftp.py)
        if not result.ok and result.hint == HINT_LOGIN:
            # A login refused after the credential's recorded expiry: say it expired and how to renew it, in the
            # words of the push's ✗ (credential_dates.explain; RMS answers an expired key like a wrong one).
            explained = credential_dates.explain(store, MallError(result.message, transient=False, hint=result.hint))
            result = LoginCheck(False, explained.message, explained.hint)
    store.connection_ok = result.ok
    store.connection_checked_at = utcnow()
    message = result.message
    if not result.ok and result.hint:
        message = f"{message} {hint_text(result.hint)}"
    store.connection_message = message
    return result


def _redis_or_none():
    # A connection test must work even while Redis is down; pacing then stays within this process.
    try:
        client = redis()
        client.ping()
        return client
    except Exception:  # noqa: BLE001 - any Redis trouble means "pace locally"
        return None
