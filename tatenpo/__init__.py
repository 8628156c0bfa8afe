"""Tatenpo: one central stock count, pushed to every mall the shop sells on."""
from __future__ import annotations

import sqlite3

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from tatenpo import cli, views
from tatenpo.platform import auth, config, i18n, logs, sqlite_writers, web
from tatenpo.platform import instance as instance_files
from tatenpo.platform.extensions import babel, csrf, db, login_manager, migrate
from tatenpo.stock.search import in_models
from tatenpo.sync import queueing


def create_app(test_config: dict | None = None) -> Flask:
    """The app: configuration, then the extensions, then each part switched on by its own init_app."""
    app = Flask(__name__, instance_relative_config=True, instance_path=config.instance_path())
    instance_files.private_folder(app.instance_path)  # the database, uploads, mails and keys: owner only
    app.config.from_mapping(config.load(app.instance_path))
    if test_config:
        app.config.from_mapping(test_config)
    app.config.setdefault("SECRET_KEY", None)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = instance_files.secret_key(app.instance_path)
    if not app.config.get("CREDENTIAL_KEY"):
        app.config["CREDENTIAL_KEY"] = instance_files.credential_key(app.instance_path)
        # Read again at each use (platform/credentials): `rotate-credential-key` may change it while we run.
        app.config.setdefault("CREDENTIAL_KEY_FILE", instance_files.credential_key_file(app.instance_path))
    _sqlite_options(app)
    logs.configure(app.config["LOG_LEVEL"])

    if app.config["TRUST_PROXY"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(config.ROOT / "migrations"), render_as_batch=True, compare_type=True,
                     include_object=in_models)
    csrf.init_app(app)
    login_manager.init_app(app)

    auth.init_app(app)  # login on every page, roles, the first-run guard
    i18n.init_app(app, babel)  # Japanese by default, English per user
    web.init_app(app)  # headers, template filters and globals, error pages
    queueing.init_app(app)  # 即時同期: a committed stock change queues its stores' pushes
    views.init_app(app)  # the blueprints and the menu
    cli.init_app(app)  # `flask --app app …` commands
    return app


def _sqlite_options(app: Flask) -> None:
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if not uri.startswith("sqlite"):
        return
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    connect_args = dict(options.get("connect_args") or {})
    # Writers wait for each other (up to 30 s) instead of failing with "database is locked".
    connect_args.setdefault("timeout", 30)
    if app.config.get("SQLITE_WRITER_LOCK"):
        # In a queue that hands the database on at once rather than SQLite's sleeps, where flock exists.
        factory = sqlite_writers.connection_factory()
        if factory is not None:
            connect_args.setdefault("factory", factory)
    options["connect_args"] = connect_args
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        # WAL: readers never block the writer; foreign keys are off in SQLite unless asked for.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


@event.listens_for(Engine, "connect")
def _postgresql_settings(dbapi_connection, connection_record) -> None:
    # No JIT compilation: every statement of this app is a short one, and PostgreSQL compiles a plan whose
    # estimate passes jit_above_cost — a filter that finds no row in 100,000 listings spent 300–400 ms
    # compiling a query that runs in 25 ms. Set for the session (autocommit: a SET inside a transaction that
    # is rolled back would not last).
    if type(dbapi_connection).__module__.startswith("psycopg") and hasattr(dbapi_connection, "autocommit"):
        was = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET jit = off")
        dbapi_connection.autocommit = was
