"""Access tokens from a refresh token (Yahoo! ID連携 v2, Login with Amazon). Both hand out one-hour tokens
(`expires_in` 3600: docs/malls/amazon.md, docs/malls/yahoo.md). A token is fetched when none is stored, ahead
of the expiry of one fetched before (it is cached for expires_in less EARLY_SECONDS), and when the mall says the
current one expired. Fetched tokens are cached in Redis (keyed by a hash of the refresh token, never the token
itself in the key) so every worker process uses the same fresh token without touching the database."""
from __future__ import annotations

import hashlib
import threading
import time
from typing import Optional

import requests
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from tatenpo.malls.base import HINT_LOGIN, CredentialField, MallError

# Refresh a little before the mall's own expiry, so a token never dies mid-batch.
EARLY_SECONDS = 120
# How long "a token was fetched for these credentials" is remembered: far beyond any entered token's hour.
FETCHED_MEMORY_SECONDS = 30 * 86400
_local: dict[str, tuple[str, float]] = {}
_local_lock = threading.Lock()



def access_token_fields(token_label, token_help, client_id_label, client_secret_label) -> tuple[CredentialField, ...]:
    """An hour-long access token and the refresh trio beside it (client ID, secret, refresh token): the shop
    enters either the token or the trio, and Tatenpo renews the token from the trio."""
    return (
        CredentialField("access_token", token_label, required=False, help=token_help),
        CredentialField("client_id", client_id_label, secret=False, required=False),
        CredentialField("client_secret", client_secret_label, required=False),
        CredentialField("refresh_token", _l("Refresh token"), required=False),
    )

class TokenSource:
    def __init__(self, mall_name: str, token_url: str, credentials: dict, redis=None, timeout: float = 20,
                 basic_auth: bool = False) -> None:
        self.mall_name = mall_name
        self.token_url = token_url
        self.static_token = credentials.get("access_token", "")
        self.client_id = credentials.get("client_id", "")
        self.client_secret = credentials.get("client_secret", "")
        self.refresh_token = credentials.get("refresh_token", "")
        self.redis = redis
        self.timeout = timeout
        self.basic_auth = basic_auth
        digest = hashlib.sha256(f"{token_url}\x1f{self.client_id}\x1f{self.refresh_token}".encode()).hexdigest()[:24]
        self.key = f"tatenpo:token:{digest}"

    @property
    def can_refresh(self) -> bool:
        return bool(self.refresh_token and self.client_id and self.client_secret)

    @property
    def configured(self) -> bool:
        return bool(self.static_token or self.can_refresh)

    def current(self) -> str:
        """A cached token from an earlier refresh (this or another process), else the one entered."""
        if self.can_refresh:
            cached = self._cached()
            if cached:
                return cached
        return self.static_token

    def token(self) -> str:
        """The token to send now: a fetched one while it is fresh; a new one when none is stored, or when the one
        fetched before is about to expire (the entered token is older than it, so never better); else the entered
        one, until the mall says it expired."""
        if not self.can_refresh:
            return self.static_token
        cached = self._cached()
        if cached:
            return cached
        if not self.static_token or self._superseded():
            return self.refresh()
        return self.static_token

    def refresh(self) -> str:
        data = {"grant_type": "refresh_token", "refresh_token": self.refresh_token}
        auth = None
        if self.basic_auth:
            auth = (self.client_id, self.client_secret)
        else:
            data.update(client_id=self.client_id, client_secret=self.client_secret)
        try:
            response = requests.post(self.token_url, data=data, auth=auth, timeout=self.timeout)
        except requests.RequestException as exc:
            raise MallError(_("Could not renew the %(mall)s access token: the token server did not answer.",
                              mall=self.mall_name), transient=True, code="token-unreachable") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        token = body.get("access_token")
        if response.status_code != 200 or not token:
            if response.status_code >= 500:
                raise MallError(_("Could not renew the %(mall)s access token: the token server had an error.",
                                  mall=self.mall_name), transient=True, code="token-server")
            # The 認可 button (settings/_authorize.html) gets new tokens without copying any; pasting still works.
            raise MallError(_("%(mall)s refused to renew the access token (%(error)s). Authorize Tatenpo again with "
                              "the button under “Authorize on the mall” in the EC site settings (pasting a new refresh "
                              "token there also works).", mall=self.mall_name,
                              error=body.get("error") or response.status_code), transient=False, hint=HINT_LOGIN,
                            code=str(body.get("error") or "invalid_grant"))
        lifetime = max(60, int(body.get("expires_in") or 3600) - EARLY_SECONDS)
        self._store(token, lifetime)
        return token

    def _superseded(self) -> bool:
        """Whether a token was fetched for these credentials before: the entered one is then stale."""
        if self.redis is not None:
            try:
                return bool(self.redis.exists(self.key + ":fetched"))
            except Exception:  # noqa: BLE001 - Redis trouble: fall back to the process cache
                pass
        with _local_lock:
            return (self.key + ":fetched") in _local

    def _cached(self) -> Optional[str]:
        if self.redis is not None:
            try:
                value = self.redis.get(self.key)
                return value.decode() if value else None
            except Exception:  # noqa: BLE001 - Redis trouble: fall back to the process cache
                pass
        with _local_lock:
            token, until = _local.get(self.key, ("", 0.0))
            return token if until > time.monotonic() else None

    def _store(self, token: str, lifetime: int) -> None:
        with _local_lock:
            _local[self.key] = (token, time.monotonic() + lifetime)
            _local[self.key + ":fetched"] = ("", float("inf"))
        if self.redis is not None:
            try:
                self.redis.set(self.key, token, ex=lifetime)
                self.redis.set(self.key + ":fetched", "1", ex=FETCHED_MEMORY_SECONDS)
            except Exception:  # noqa: BLE001 - the process cache still holds it
                pass
