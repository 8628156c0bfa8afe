"""Configuration: defaults, then the environment, then instance/config.py (`load`, used by the factory and
by the scheduler, which needs the settings without building an app).

Only `DATABASE_URL` and `REDIS_URL` are needed to move from the embedded default (SQLite and an
embedded Redis under instance/) to PostgreSQL and a shared Redis server.
"""
from __future__ import annotations

import os
from pathlib import Path

from flask import Config

# The repository: tatenpo/platform/config.py
ROOT = Path(__file__).resolve().parents[2]


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _bool_env(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.lower() in ("1", "true", "yes", "on")


def database_url(instance_path: str) -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        return "sqlite:///" + str(Path(instance_path) / "tatenpo.db")
    # Heroku-style and plain postgres URLs select psycopg 3, the driver we pin.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def embedded_redis_socket(instance_path: str) -> str:
    return str(Path(instance_path) / "redis.sock")


def redis_url(instance_path: str) -> str:
    return os.environ.get("REDIS_URL") or "unix://" + embedded_redis_socket(instance_path)


def defaults(instance_path: str) -> dict:
    """The configuration before instance/config.py and test overrides are applied."""
    https = _bool_env("HTTPS")
    return {
        "SQLALCHEMY_DATABASE_URI": database_url(instance_path),
        "REDIS_URL": redis_url(instance_path),
        # How long one Redis call may wait: `make run` gives its web processes 2 s, so a Redis that is away
        # or paused never holds a page for long (a save's push is then left to the sweep).
        "REDIS_SOCKET_TIMEOUT_SECONDS": float(os.environ.get("REDIS_SOCKET_TIMEOUT_SECONDS") or 10),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        # Session cookies: never readable by scripts; Secure when served over HTTPS.
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": https,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SECURE": https,
        "HTTPS": https,
        "TRUST_PROXY": _bool_env("TRUST_PROXY"),
        "WTF_CSRF_TIME_LIMIT": None,
        "BABEL_DEFAULT_LOCALE": "ja",
        "BABEL_DEFAULT_TIMEZONE": os.environ.get("TIMEZONE", "Asia/Tokyo"),
        "LANGUAGES": ["ja", "en"],
        "MAX_CONTENT_LENGTH": _int_env("MAX_UPLOAD_MB", 100) * 1024 * 1024,
        "SYNC_INTERVAL_SECONDS": _int_env("SYNC_INTERVAL_SECONDS", 300),
        "SYNC_HISTORY_DAYS": _int_env("SYNC_HISTORY_DAYS", 90),
        "MALL_TIMEOUT_SECONDS": _int_env("MALL_TIMEOUT_SECONDS", 20),
        # Workers `make run` starts for the sync queue (one of them takes imports first), besides sync-deferred's.
        "SYNC_WORKERS": _int_env("SYNC_WORKERS", 3),
        # A push's claim on its entries, renewed before each batch; a dead push's claim is taken back sooner (the lock).
        "SYNC_LEASE_SECONDS": _int_env("SYNC_LEASE_SECONDS", 60),
        # The per-store push lock lives this long past its holder's last heartbeat: how soon a killed push is noticed.
        "SYNC_LOCK_SECONDS": _int_env("SYNC_LOCK_SECONDS", 15),
        # Items one read-back or drift-check job reads before it queues the rest, so it never holds a worker for long.
        "SYNC_READ_SLICE": _int_env("SYNC_READ_SLICE", 2000),
        "MAIL_SERVER": os.environ.get("MAIL_SERVER", ""),
        "MAIL_PORT": _int_env("MAIL_PORT", 25),
        "MAIL_FROM": os.environ.get("MAIL_FROM", "tatenpo@localhost"),
        "ORDER_MAIL_DOMAIN": os.environ.get("ORDER_MAIL_DOMAIN", "orders.tatenpo.local"),
        # The order-mail receiver (自動受注メール取込): where it listens, and the largest mail it keeps.
        "ORDER_SMTP_HOST": os.environ.get("ORDER_SMTP_HOST", "127.0.0.1"),
        "ORDER_SMTP_PORT": _int_env("ORDER_SMTP_PORT", 2525),
        "ORDER_MAIL_MAX_BYTES": _int_env("ORDER_MAIL_MAX_MB", 10) * 1024 * 1024,
        # A push never overwrites a fall on the mall that no order explains: it waits this long for the order.
        "ORDER_WAIT_SECONDS": _int_env("ORDER_WAIT_SECONDS", 600),
        "ORDER_MAIL_SILENCE_DAYS": _int_env("ORDER_MAIL_SILENCE_DAYS", 3),
        # 受注API: each store's orders are read from its mall this often (a store may override it), from its cursor
        # less an overlap (an order the mall indexes late is still found); a store's first poll looks this far back.
        "ORDER_POLL_SECONDS": _int_env("ORDER_POLL_SECONDS", 120),
        "ORDER_POLL_OVERLAP_SECONDS": _int_env("ORDER_POLL_OVERLAP_SECONDS", 600),
        "ORDER_POLL_FIRST_HOURS": _int_env("ORDER_POLL_FIRST_HOURS", 24),
        # Hosts besides the malls' own that a store's endpoint may name ("host" or "host:port", comma-separated):
        # `make run` allows its sandbox malls. Plain ftp:// to a real mall only with ALLOW_PLAIN_FTP.
        "ALLOWED_MALL_HOSTS": os.environ.get("ALLOWED_MALL_HOSTS", ""),
        "ALLOW_PLAIN_FTP": _bool_env("ALLOW_PLAIN_FTP"),
        # How long a 楽天 FTP push waits for RMS' result log (RMS publishes no processing time; see
        # tatenpo/malls/rakuten_ftp.py): later logs mark the rows failed, and they are pushed again.
        "RAKUTEN_FTP_LOG_WAIT_SECONDS": _int_env("RAKUTEN_FTP_LOG_WAIT_SECONDS", 300),
        "SANDBOX_URL": os.environ.get(
            "SANDBOX_URL", "http://127.0.0.1:%s" % os.environ.get("SANDBOX_HTTP_PORT", "5001")
        ),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        # SQLite writers queue in a file lock (platform/sqlite_writers); `make run` turns it on for its SQLite.
        "SQLITE_WRITER_LOCK": _bool_env("SQLITE_WRITER_LOCK"),
    }


def instance_path() -> str:
    """The instance folder: TATENPO_INSTANCE, else instance/ beside the code."""
    return os.environ.get("TATENPO_INSTANCE") or str(ROOT / "instance")


def load(instance: str) -> Config:
    """The defaults, then instance/config.py when present: what the app runs with before test overrides."""
    config = Config(instance)
    config.from_mapping(defaults(instance))
    config.from_pyfile("config.py", silent=True)
    return config
