"""The sandbox malls seen from Tatenpo: listing and creating sandbox stores through the sandbox's JSON admin
API (SANDBOX_URL), so the settings page can offer "use a sandbox store" and fill its endpoint and credentials.
The sandbox is a separate process: this module only speaks HTTP to it, with a short timeout."""
from __future__ import annotations

from typing import Optional

import requests
from flask_babel import gettext as _


class SandboxUnavailable(RuntimeError):
    """The sandbox malls are not running (or not at SANDBOX_URL)."""


def _call(method: str, url: str, timeout: float, **kwargs) -> dict:
    try:
        response = requests.request(method, url, timeout=timeout, **kwargs)
    except requests.RequestException as exc:
        raise SandboxUnavailable(_("The sandbox malls are not reachable at %(url)s. They start with `make run`.",
                                   url=url.split("/_sandbox")[0])) from exc
    if response.status_code == 404:
        raise SandboxUnavailable(_("That sandbox store does not exist (any more)."))
    if response.status_code >= 400:
        try:
            detail = response.json().get("error")
        except ValueError:
            detail = response.text[:200]
        raise SandboxUnavailable(_("The sandbox malls refused the request: %(detail)s", detail=detail))
    return response.json()


def stores(base_url: str, mall: Optional[str] = None, timeout: float = 3) -> list[dict]:
    """Sandbox stores (id, mall, name, endpoint, credentials), optionally of one mall."""
    found = _call("GET", base_url.rstrip("/") + "/_sandbox/stores", timeout)["stores"]
    return [s for s in found if mall is None or s["mall"] == mall]


def store(base_url: str, store_id: int, timeout: float = 3) -> dict:
    return _call("GET", f"{base_url.rstrip('/')}/_sandbox/stores/{int(store_id)}", timeout)


def create_store(base_url: str, mall: str, items: int = 20, timeout: float = 30) -> dict:
    return _call("POST", base_url.rstrip("/") + "/_sandbox/stores", timeout, json={"mall": mall, "items": items})
