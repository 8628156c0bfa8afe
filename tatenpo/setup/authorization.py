"""認可ボタン: a store gets its mall tokens by authorizing Tatenpo on the mall's own consent page instead of
pasting them. Starting gives the URL of the consent page with a random state, remembered in the shop's own
session (`pending`, the caller's session dict) together with the store and the user; the mall's answer is used
only with that state, once, by that user, for that store's mall. The code is exchanged with the mall
(tatenpo/malls/authorization.py, over malls/http.py, only to the mall's own hosts or the store's allowed
endpoint: setup/endpoints.py), the tokens are stored encrypted like any credential (platform/credentials.py,
through setup/stores.update_store), and the credential's renewal date noted (setup/credential_dates.py).
Any refusal or error changes nothing. Pasting tokens stays possible. Nothing here commits: the caller does.
"""
from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Optional

from flask_babel import lazy_gettext as _l

from tatenpo import malls
from tatenpo.malls.authorization import AuthorizationFlow, AuthorizationRefused
from tatenpo.models import Store
from tatenpo.platform import credentials
from tatenpo.platform.extensions import db
from tatenpo.setup import credential_dates, endpoints
from tatenpo.setup import stores as store_domain

# An authorization started and not answered within this long is forgotten (the malls' codes live 5–10 minutes;
# the shop may need a while to log in to the mall first).
PENDING_SECONDS = 30 * 60
# Authorizations one session may have started and not finished (older ones are forgotten first).
MAX_PENDING = 5


class AuthorizationError(ValueError):
    """Why an authorization cannot start or its answer cannot be used; `store_id` when the store is known.
    The message is for the shop, in its language; nothing was changed."""

    def __init__(self, message: Any, store_id: Optional[int] = None, denied: bool = False) -> None:
        super().__init__(str(message))
        self.message = message
        self.store_id = store_id
        self.denied = denied


@dataclass(frozen=True)
class Offer:
    """What the store's settings page says of the mall's authorization: the button's words, and the application
    credentials still to be saved before it can start."""

    label: Any
    missing: list[Any]


def flow(mall: str) -> Optional[AuthorizationFlow]:
    """The mall's authorization flow; None where the mall has none (tokens are pasted)."""
    return malls.mall(mall).authorization


def offer(store: Store) -> Optional[Offer]:
    """The button's offer for the store; None when its mall has no authorization flow."""
    found = flow(store.mall)
    if found is None:
        return None
    try:
        values = credentials.read(store)
    except credentials.CredentialKeyError:
        values = {}
    return Offer(found.label, _missing(store.mall, found, values))


def _missing(mall: str, found: AuthorizationFlow, values: Mapping[str, str]) -> list[Any]:
    labels = {spec.key: spec.label for spec in malls.credential_fields(mall)}
    return [labels.get(key, key) for key in found.app_fields if not values.get(key)]


def begin(store: Store, user_id: int, redirect_uri: str, pending: MutableMapping[str, dict],
          now: Optional[float] = None) -> str:
    """The URL of the mall's consent page for the store; the state is remembered in `pending`."""
    found = flow(store.mall)
    if found is None:
        raise AuthorizationError(_l("%(mall)s has no authorization button: enter the credentials in the form.",
                                    mall=malls.label(store.mall)), store.id)
    try:
        values = credentials.read(store)
    except credentials.CredentialKeyError as exc:
        raise AuthorizationError(exc.args[0], store.id) from None
    missing = _missing(store.mall, found, values)
    if missing:
        raise AuthorizationError(_l("Save %(fields)s first: the authorization needs them.",
                                    fields=", ".join(str(label) for label in missing)), store.id)
    _check_endpoint(store)
    now = time.time() if now is None else now
    _forget_old(pending, now)
    while len(pending) >= MAX_PENDING:  # room for this one: the oldest goes
        del pending[min(pending, key=lambda key: float(pending[key].get("at", 0)))]
    state = secrets.token_urlsafe(32)
    pending[state] = {"store": store.id, "mall": store.mall, "user": user_id, "at": now}
    return found.authorize_url(store.endpoint, values, redirect_uri, state)


def complete(mall: str, args: Mapping[str, str], user_id: int, redirect_uri: str, pending: MutableMapping[str, dict],
             *, timeout: float, redis=None, now: Optional[float] = None) -> Store:
    """Use the mall's answer at the callback: the state must be one this session started for this mall and user
    (it is used up either way); then the code is exchanged and the tokens stored. AuthorizationError otherwise,
    with nothing changed."""
    now = time.time() if now is None else now
    state = str(args.get("state") or "")
    started = pending.pop(state, None) if state else None
    _forget_old(pending, now)
    if (started is None or started.get("mall") != mall or started.get("user") != user_id
            or now - float(started.get("at", 0)) > PENDING_SECONDS):
        raise AuthorizationError(_l("This answer does not belong to an authorization started here, or it was already "
                                    "used. Nothing was changed: start again with the button."),
                                 started.get("store") if started and started.get("user") == user_id else None)
    store = db.session.get(Store, started["store"])
    if store is None or store.mall != mall:
        raise AuthorizationError(_l("The EC site of this authorization no longer exists. Nothing was changed."))
    found = flow(store.mall)
    try:
        values = credentials.read(store)
    except credentials.CredentialKeyError as exc:
        raise AuthorizationError(exc.args[0], store.id) from None
    try:
        answer = found.read_answer(args, values)
        _check_endpoint(store)
        grant = found.exchange(store.endpoint, values, answer, redirect_uri, timeout, redis)
    except AuthorizationRefused as exc:
        raise AuthorizationError(exc.message, store.id, denied=exc.denied) from None
    store_domain.update_store(store, credentials=grant.credentials)
    # The expiring credential (Yahoo!'s refresh token, Amazon's authorisation) was renewed now; the mall's rule
    # gives its expiry.
    credential_dates.note_renewal(store, expires_at=None)
    db.session.flush()
    return store


def _check_endpoint(store: Store) -> None:
    """The code and the app's secret go only where the store's credentials may go (setup/endpoints.py)."""
    try:
        endpoints.check(store.mall, store.endpoint)
    except endpoints.EndpointRefused as exc:
        raise AuthorizationError(exc.message, store.id) from None


def _forget_old(pending: MutableMapping[str, dict], now: float) -> None:
    for state, started in list(pending.items()):
        if now - float(started.get("at", 0)) > PENDING_SECONDS:
            del pending[state]
