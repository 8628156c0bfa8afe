"""The HTTP plumbing every API connector shares: one session, a timeout on every call, pacing before every
call, and retries with exponential backoff (or the mall's Retry-After) for transient failures."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Optional

import requests
from flask_babel import gettext as _

from tatenpo.malls.base import MallError
from tatenpo.malls.pacing import Pacer, sleep_backoff

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pace:
    """Which bucket a call spends from: the account key, the mall's rate (per second) and burst."""

    key: str
    rate: float
    burst: float = 1


def retry_after(response: requests.Response) -> Optional[float]:
    value = response.headers.get("Retry-After")
    try:
        return min(60.0, float(value)) if value else None
    except ValueError:
        return None


class HttpClient:
    def __init__(self, mall_name: str, pacer: Pacer, timeout: float, retries: int = 3, backoff: float = 1.0) -> None:
        self.mall_name = mall_name
        self.pacer = pacer
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "Tatenpo stock sync"

    def close(self) -> None:
        self.session.close()

    def call(self, method: str, url: str, *, pace: Optional[Pace], classify: Callable[[requests.Response], Optional[MallError]],
             cost: float = 1, **kwargs) -> requests.Response:
        """The response the mall gave, once `classify` finds no error in it. A transient MallError is retried
        up to `retries` times; any other is raised at once."""
        attempt = 0
        while True:
            if pace is not None:
                self.pacer.wait(pace.key, pace.rate, pace.burst, cost)
            try:
                response = self.session.request(method, url, timeout=self.timeout, **kwargs)
            except requests.Timeout:
                error = MallError(
                    _("%(mall)s did not answer within %(seconds)s seconds.", mall=self.mall_name, seconds=f"{self.timeout:g}"),
                    transient=True, code="timeout")
            except requests.ConnectionError:
                error = MallError(_("Could not connect to %(mall)s.", mall=self.mall_name), transient=True,
                                  code="connection")
            else:
                error = classify(response)
                if error is None:
                    return response
            if not error.transient or attempt >= self.retries:
                raise error
            log.info("%s: %s (retry %d of %d)", self.mall_name, error.code, attempt + 1, self.retries)
            sleep_backoff(attempt, self.backoff, error.retry_after)
            attempt += 1


def server_trouble(response: requests.Response, mall_name: str) -> Optional[MallError]:
    """The failures every mall shares: throttling, maintenance and server errors (all worth retrying)."""
    status = response.status_code
    if status == 429:
        return MallError(_("%(mall)s limited the request rate; retrying later.", mall=mall_name), transient=True,
                         code="throttled", retry_after=retry_after(response))
    if status == 503:
        return MallError(_("%(mall)s is under maintenance or temporarily unavailable.", mall=mall_name),
                         transient=True, code="maintenance", retry_after=retry_after(response))
    if status >= 500:
        return MallError(_("%(mall)s had a server error (HTTP %(status)s).", mall=mall_name, status=status),
                         transient=True, code=f"http-{status}")
    return None
