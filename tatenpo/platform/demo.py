"""What `make run` adds for a person trying Tatenpo: the sandbox malls beside the app, and on first start one
demo sandbox store per mall (20 items each), whose endpoint and credentials the banner prints and the
settings page (ECサイト › サンドボックス店舗で試す) offers to fill in."""
from __future__ import annotations

import importlib.util
import os

DEMO_ITEMS = 20


def sandbox_available() -> bool:
    try:
        return importlib.util.find_spec("sandbox.__main__") is not None
    except ImportError:
        return False


def _sandbox_address() -> tuple[str, str, int]:
    host = os.environ.get("SANDBOX_HOST", "127.0.0.1")
    return (f"http://{host}:{os.environ.get('SANDBOX_HTTP_PORT', '5001')}", host,
            int(os.environ.get("SANDBOX_FTP_PORT", "2121")))


def _state():
    from pathlib import Path

    from sandbox import default_db_path
    from sandbox.state import State

    path = default_db_path()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return State(path)


def create_demo_stores() -> list[dict]:
    """One sandbox store per mall, written straight into the sandbox's state file (the sandbox process is
    not running yet when `make run` prepares). Does nothing when the sandbox already has stores."""
    from sandbox import catalog, malls

    state = _state()
    try:
        if state.stores():
            return []
        return [state.create_store(key, f"デモ {malls.mall(key).name}",
                                   lambda store_id, key=key: catalog.generate(key, store_id, DEMO_ITEMS))
                for key in malls.mall_keys()]
    finally:
        state.close()


def prepare(app) -> None:
    """Runs before the processes start (inside the app context)."""
    if sandbox_available():
        create_demo_stores()


def extra_processes(python: str) -> list[tuple[str, list[str]]]:
    """The processes `make run` starts beside the app for a trial: (name, command line)."""
    if not sandbox_available():
        return []
    return [("sandbox", [python, "-m", "sandbox"])]


def banner_lines() -> list[str]:
    """Where the sandbox malls are and which credentials their stores take."""
    if not sandbox_available():
        return []
    from sandbox import malls

    url, ftp_host, ftp_port = _sandbox_address()
    # The banner names the SFTP route too, as RMS runs it today.
    where = malls.Endpoints(url, ftp_host, ftp_port, int(os.environ.get("SANDBOX_SFTP_PORT", "2222")))
    state = _state()
    try:
        stores = state.stores()
    finally:
        state.close()
    lines = [f"Sandbox malls (try every step without a real account): {url}/",
             "  Settings › EC sites › Add: choose the mall, then a sandbox store — or enter these:"]
    for store in stores:
        mall = malls.mall(store["mall"])
        endpoint = mall.endpoint(store, where)
        secrets = "  ".join(f"{k}={v}" for k, v in store["credentials"].items())
        also = mall.describe(store, where).get("sftp_endpoint")
        if also:
            endpoint += f" (or {also})"
        lines.append(f"  #{store['id']} {mall.name}: endpoint={endpoint}  {secrets}")
    return lines
