"""What the sync benchmarks share: a throwaway Tatenpo (SQLite or PostgreSQL, an embedded Redis, its own
instance folder), the sandbox malls as their own process, and a store linked to a sandbox store's catalog."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FOLDER = Path(tempfile.mkdtemp(prefix="tatenpo-bench-"))
os.environ["TATENPO_INSTANCE"] = str(FOLDER / "instance")

import requests  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402

from tatenpo import create_app  # noqa: E402
from tatenpo.models import Listing, Product, Store, SupportApplication  # noqa: E402
from tatenpo.platform import credentials, embedded_redis  # noqa: E402
from tatenpo.platform.extensions import db  # noqa: E402


class Stack:
    """Start with `with Stack() as stack:`; everything started is stopped on exit."""

    def __init__(self, database_url: str | None = None, **settings) -> None:
        self.instance = FOLDER / "instance"
        self.instance.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url or "sqlite:///" + str(FOLDER / "tatenpo.db")
        self.settings = settings
        self.processes: list[subprocess.Popen] = []
        self.redis_process = None

    def __enter__(self) -> "Stack":
        socket_path = FOLDER / "redis.sock"
        self.redis_process = embedded_redis.start(FOLDER / "redis", socket_path, persist=False)
        self.redis_url = "unix://" + str(socket_path)
        config = {
            "SQLALCHEMY_DATABASE_URI": self.database_url,
            "REDIS_URL": self.redis_url,
            "SECRET_KEY": "bench",
            "CREDENTIAL_KEY": Fernet.generate_key().decode(),
            "LOG_LEVEL": "WARNING",
            **self.settings,
        }
        (self.instance / "config.py").write_text("".join(f"{k} = {v!r}\n" for k, v in config.items()))
        self.app = create_app()
        with self.app.app_context():
            db.drop_all()
            db.create_all()
        self._start_sandbox()
        return self

    def _start_sandbox(self) -> None:
        ports_file = FOLDER / "sandbox-ports.json"
        env = dict(os.environ, SANDBOX_DB=str(FOLDER / "sandbox.db"), SANDBOX_HTTP_PORT="0", SANDBOX_FTP_PORT="0",
                   SANDBOX_PORTS_FILE=str(ports_file))
        self.start([sys.executable, "-m", "sandbox"], env=env)
        deadline = time.monotonic() + 60
        while not ports_file.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the sandbox malls did not start")
            time.sleep(0.05)
        self.sandbox_url = json.loads(ports_file.read_text())["url"]

    def start(self, args: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(FOLDER / f"process-{len(self.processes)}.log", "ab")
        process = subprocess.Popen(args, cwd=ROOT, env=env or dict(os.environ), stdout=log, stderr=log,
                                   start_new_session=True)
        self.processes.append(process)
        return process

    def worker(self) -> subprocess.Popen:
        return self.start([sys.executable, "worker.py"])

    def sandbox(self, method: str, path: str, **kwargs):
        response = requests.request(method, self.sandbox_url + path, timeout=600, **kwargs)
        response.raise_for_status()
        return response.json()

    def sandbox_stock(self, store_id: int) -> dict:
        items = self.sandbox("GET", f"/_sandbox/stores/{store_id}/stock")["items"]
        return {(i["code"], i["variant"]): i["quantity"] for i in items}

    def linked_store(self, mall: str, items: int, listings: int | None = None, **store_fields) -> tuple[int, dict, list]:
        """A sandbox store, its Tatenpo store (使用中, application completed) and `listings` linked SKUs."""
        remote = self.sandbox("POST", "/_sandbox/stores", json={"mall": mall, "items": items})
        catalog = self.sandbox("GET", f"/_sandbox/stores/{remote['id']}/stock")["items"][:listings]
        with self.app.app_context():
            store = Store(mall=mall, name="ベンチ店", auto_sync=True, endpoint=remote["endpoint"], settings={},
                          **store_fields)
            credentials.write(store, remote["credentials"])
            db.session.add(store)
            db.session.add(SupportApplication(company="ベンチ", contact_name="ベンチ", malls=[mall.split("-")[0]],
                                              application_type="自動受注メール取込・自動在庫同期を開始する",
                                              status="completed"))
            db.session.flush()
            product_rows = [{"code": f"B{n:07d}", "name": i["name"], "on_hand": i["quantity"], "allocated": 0,
                             "stock_managed": True, "version": 0, "search_text": ""} for n, i in enumerate(catalog)]
            for start in range(0, len(product_rows), 5000):
                db.session.execute(db.insert(Product), product_rows[start:start + 5000])
            ids = dict(db.session.execute(db.select(Product.code, Product.id)).all())
            listing_rows = [{"store_id": store.id, "product_id": ids[f"B{n:07d}"], "item_code": i["code"],
                             "variant_code": i["variant"], "code": i["sku"], "title": "", "attributes": {},
                             "sync_enabled": True, "drifted": False, "search_text": ""}
                            for n, i in enumerate(catalog)]
            for start in range(0, len(listing_rows), 5000):
                db.session.execute(db.insert(Listing), listing_rows[start:start + 5000])
            db.session.commit()
            product_ids = [ids[f"B{n:07d}"] for n in range(len(catalog))]
            return store.id, remote, list(zip(product_ids, catalog))

    def __exit__(self, *exc) -> None:
        for process in self.processes:
            try:
                os.killpg(process.pid, 9)
            except ProcessLookupError:
                pass
            process.wait()
        if self.redis_process is not None:
            embedded_redis.stop(self.redis_process)
        shutil.rmtree(FOLDER, ignore_errors=True)  # the instance, the databases, the sandbox's files and logs
