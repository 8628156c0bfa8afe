"""What every sandbox mall API shares: finding the sandbox state, fault switches and the call log.

Fault switches (POST /_sandbox/stores/<id>/faults), checked on every API call of the store:
  auth: "wrong" | "expired" | "revoked"
                               wrong: the mall rejects the credentials; expired: the key / the access token
                               issued with the store has expired (a token from a refresh still works);
                               revoked: the refresh token is refused too and every access token is expired
  maintenance: true | N        the mall is down for maintenance (N: the next N calls)
  error_5xx: true | N          an internal server error
  throttle: true | N           rate limiting beyond the real limit
  timeout: true | N            the call hangs for `hang_seconds` (default 5); if the client gave up (or died)
                               meanwhile, the call is dropped (504, nothing changes), else it is served: a
                               slow mall, and never a stale push landing after its client is gone
  reflection_delay: seconds    a new quantity shows in reads and on the store page only after this delay
  item_error: ["code", …]      Yahoo!: setStock refuses these codes (`code` or `code:subcode`) one by one
                               (st-02104 in a 207 answer) while the rest of the request goes through
"""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Callable, Optional

from flask import Response, current_app, g, request

from .limits import Limiter
from .state import State


def state() -> State:
    return current_app.extensions["sandbox.state"]


def limiter() -> Limiter:
    return current_app.extensions["sandbox.limiter"]


def arrived() -> float:
    """When this request reached the server (set before any work), for rate limiting."""
    return g.get("sandbox_arrived") or time.monotonic()


@dataclass
class Replies:
    """A mall's own way of saying each failure."""

    auth_wrong: Callable[[], Response]
    auth_expired: Callable[[], Response]
    maintenance: Callable[[], Response]
    server_error: Callable[[], Response]
    gateway_timeout: Callable[[], Response]
    throttled: Callable[[float], Response]


def fault_reply(store: dict, replies: Replies, refreshed_token: bool = False) -> Optional[Response]:
    """The failure a fault switch calls for, or None to serve the call normally (maybe after hanging).
    `refreshed_token`: the call came with an access token from a refresh, which outlives "expired"."""
    st = state()
    auth = store["faults"].get("auth")
    if auth == "revoked" or (auth == "expired" and not refreshed_token):
        return replies.auth_expired()
    if auth == "wrong":
        return replies.auth_wrong()
    if st.take_fault(store["id"], "timeout"):
        time.sleep(float(store["faults"].get("hang_seconds", 5)))
        if _client_gone():
            return replies.gateway_timeout()
    if st.take_fault(store["id"], "maintenance"):
        return replies.maintenance()
    if st.take_fault(store["id"], "error_5xx"):
        return replies.server_error()
    if st.take_fault(store["id"], "throttle"):
        return replies.throttled(1.0)
    return None


def _client_gone() -> bool:
    """Has the caller closed its connection (timed out, killed)? A peek that finds end-of-stream says so."""
    sock = request.environ.get("werkzeug.socket")
    if sock is None:
        return False
    request.get_data(cache=True, parse_form_data=True)  # unread body bytes would hide the end of the stream (kept for the handler)
    previous = sock.gettimeout()
    try:
        sock.settimeout(0)
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False  # nothing to read: still there, waiting for the answer
    except OSError:
        return True
    finally:
        try:
            sock.settimeout(previous)
        except OSError:
            pass


def reflection_delay(store: dict) -> float:
    return float(store["faults"].get("reflection_delay") or 0)


def record(store: Optional[dict], api: str, response: Response, items: int = 0) -> Response:
    state().record_call(store["id"] if store else None, api, response.status_code, items)
    return response
