"""Migrations build exactly the schema the models describe, on the backend under test."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

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


def test_migrations_upgrade_a_fresh_database_and_match_the_models(tmp_path, database_url):
    with _empty_database(database_url, tmp_path) as url:
        upgraded = _flask("db", "upgrade", database_url=url, instance=tmp_path)
        assert upgraded.returncode == 0, upgraded.stderr
        check = _flask("db", "check", database_url=url, instance=tmp_path)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "No new upgrade operations detected" in check.stdout + check.stderr
        downgraded = _flask("db", "downgrade", "base", database_url=url, instance=tmp_path)
        assert downgraded.returncode == 0, downgraded.stderr
