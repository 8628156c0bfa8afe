"""`make run`'s first start: one demo sandbox store per mall with 20 items, and a banner saying which
credentials to use; a second start adds nothing."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from tatenpo.malls import connector_for, keys
from tatenpo.platform import demo

ROOT = Path(__file__).resolve().parent.parent


def test_first_start_creates_one_demo_store_per_mall_and_later_starts_add_none(tmp_path, monkeypatch):
    monkeypatch.setenv("SANDBOX_DB", str(tmp_path / "sandbox.db"))
    created = demo.create_demo_stores()
    assert sorted(s["mall"] for s in created) == sorted(keys())
    assert demo.create_demo_stores() == []
    lines = demo.banner_lines()
    assert lines[0].endswith("http://127.0.0.1:5001/")
    for store in created:
        assert any(all(f"{k}={v}" in line for k, v in store["credentials"].items()) for line in lines)
    assert any("endpoint=ftp://127.0.0.1:2121" in line for line in lines)


def test_the_demo_stores_serve_20_items_and_accept_their_credentials(tmp_path):
    db = tmp_path / "sandbox.db"
    env = dict(os.environ, SANDBOX_DB=str(db), SANDBOX_HTTP_PORT="0", SANDBOX_FTP_PORT="0",
               SANDBOX_PORTS_FILE=str(tmp_path / "ports.json"))
    subprocess.run([sys.executable, "-c", "from tatenpo.platform import demo; demo.create_demo_stores()"], cwd=ROOT, env=env,
                   check=True)
    process = subprocess.Popen([sys.executable, "-m", "sandbox"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "ports.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        url = json.loads((tmp_path / "ports.json").read_text())["url"]
        stores = requests.get(url + "/_sandbox/stores", timeout=10).json()["stores"]
        assert len(stores) == 5
        yahoo = next(s for s in stores if s["mall"] == "yahoo")
        items = requests.get(f"{url}/_sandbox/stores/{yahoo['id']}/stock", timeout=10).json()["items"]
        assert len({i["code"] for i in items}) == 20
        assert connector_for("yahoo", yahoo["endpoint"], yahoo["credentials"], None, 5).check_login().ok
    finally:
        process.terminate()
        process.wait(10)
