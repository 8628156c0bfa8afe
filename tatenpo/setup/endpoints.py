"""Where a store may send its mall credentials: the mall's own hosts (each connector declares them), or a host
the operator allowed (ALLOWED_MALL_HOSTS — `make run` allows its sandbox malls). Anything else is refused,
so a changed endpoint can neither leak the stored keys to another server nor make Tatenpo call any address
on the network (SSRF). Plain FTP to a real mall host sends the password in the clear and needs ALLOW_PLAIN_FTP.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Optional
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import lazy_gettext as _l

from tatenpo import malls


class EndpointRefused(ValueError):
    def __init__(self, message) -> None:
        super().__init__(str(message))
        self.message = message


def check(mall: str, endpoint: Optional[str]) -> Optional[str]:
    """The endpoint as it will be stored (None: the mall's own default), or EndpointRefused with the reason."""
    if not endpoint:
        return None
    connector = malls.mall(mall)
    try:
        url = urlsplit(endpoint.strip())
        port = url.port
    except ValueError:
        raise EndpointRefused(_l("“%(endpoint)s” is not an address.", endpoint=endpoint)) from None
    host = (url.hostname or "").lower()
    if url.scheme not in connector.endpoint_schemes or not host or url.username or url.password:
        raise EndpointRefused(_l("“%(endpoint)s” is not an address this mall can be reached at.", endpoint=endpoint))
    allowed = operator_allowed(host, port)
    if not allowed and not mall_host(host, connector.hosts):
        raise EndpointRefused(_l("%(host)s is not an address of %(mall)s. Mall credentials are sent only to the "
                                 "mall itself, or to a host the operator allowed (ALLOWED_MALL_HOSTS).",
                                 host=host, mall=connector.label))
    if url.scheme == "ftp" and not allowed and not current_app.config.get("ALLOW_PLAIN_FTP"):
        raise EndpointRefused(_l("Plain FTP sends the password unencrypted: use sftp://, or have the operator "
                                 "allow plain FTP (ALLOW_PLAIN_FTP)."))
    return endpoint.strip()


def mall_host(host: str, patterns: Iterable[str]) -> bool:
    """`host` is one of the mall's: exactly, or under a "*.domain" pattern."""
    for pattern in patterns:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and host != pattern[2:]:
                return True
        elif host == pattern:
            return True
    return False


def operator_allowed(host: str, port: Optional[int]) -> bool:
    """ALLOWED_MALL_HOSTS: comma-separated `host` (any port) or `host:port` entries."""
    for entry in str(current_app.config.get("ALLOWED_MALL_HOSTS") or "").split(","):
        entry = entry.strip().lower()
        if not entry:
            continue
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if name == host and (not entry_port or (port is not None and str(port) == entry_port)):
            return True
    return False
