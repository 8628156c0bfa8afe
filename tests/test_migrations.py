"""Migrations build exactly the schema the models describe, on the backend under test."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from tatenpo.stock.search import TRIGRAM_INDEXES

ROOT = Path(__file__).resolve().parent.parent


def _flask(*args, database_url, instance):
    env = dict(os.environ, DATABASE_URL=database_url, TATENPO_INSTANCE=str(instance))
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@contextmanager
def _empty_database(database_url, tmp_path):
    """A brand-new empty database: a SQLite file, or a scratch database on the PostgreSQL server under test."""
    if not database_url:
        yield "sqlite:///" + str(tmp_path / "fresh.db")
        return
    name = "tatenpo_migrations_" + secrets.token_hex(4)
    admin = create_engine(make_url(database_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _trigram_indexes(url) -> set[str]:
    engine = create_engine(url)
    try:
        found = {index["name"] for table in ("products", "listings") for index in inspect(engine).get_indexes(table)}
    finally:
        engine.dispose()
    return found & TRIGRAM_INDEXES


def test_migrations_upgrade_a_fresh_database_and_match_the_models(tmp_path, database_url):
    with _empty_database(database_url, tmp_path) as url:
        upgraded = _flask("db", "upgrade", database_url=url, instance=tmp_path)
        assert upgraded.returncode == 0, upgraded.stderr
        # PostgreSQL gets the trigram indexes of the search (pg_trgm is allowed here); SQLite has none.
        assert _trigram_indexes(url) == (TRIGRAM_INDEXES if database_url else set())
        check = _flask("db", "check", database_url=url, instance=tmp_path)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "No new upgrade operations detected" in check.stdout + check.stderr
        downgraded = _flask("db", "downgrade", "base", database_url=url, instance=tmp_path)
        assert downgraded.returncode == 0, downgraded.stderr


@pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"),
                    reason="PostgreSQL only (SQLite has no extensions); .ci/run's PostgreSQL pass runs it")
def test_without_the_right_to_create_pg_trgm_the_migrations_go_on_without_the_trigram_indexes(tmp_path, database_url):
    role = "tatenpo_limited_" + secrets.token_hex(3)
    admin = create_engine(make_url(database_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE ROLE "{role}" LOGIN'))
    try:
        with _empty_database(database_url, tmp_path) as url:
            owner = create_engine(url, isolation_level="AUTOCOMMIT")
            with owner.connect() as connection:  # tables yes, extensions no (no CREATE on the database)
                connection.execute(text(f'GRANT USAGE, CREATE ON SCHEMA public TO "{role}"'))
            owner.dispose()
            limited = make_url(url).set(username=role, password=None).render_as_string(hide_password=False)
            upgraded = _flask("db", "upgrade", database_url=limited, instance=tmp_path)
            assert upgraded.returncode == 0, upgraded.stderr
            assert "pg_trgm is not available" in upgraded.stderr
            assert _trigram_indexes(limited) == set()
            check = _flask("db", "check", database_url=limited, instance=tmp_path)
            assert "No new upgrade operations detected" in check.stdout + check.stderr
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()
