"""`flask stores add|list`: EC sites for scripts and operators."""
from __future__ import annotations

from datetime import timezone

import click
from sqlalchemy import select

from tatenpo import malls
from tatenpo.cli.output import emit, fail
from tatenpo.models import Store
from tatenpo.platform import credentials
from tatenpo.platform.extensions import db
from tatenpo.setup import credential_dates, stores


def _store_data(store: Store) -> dict:
    return {
        "id": store.id,
        "mall": store.mall,
        "name": store.name,
        "auto_sync": store.auto_sync,
        "immediate_sync": store.immediate_sync,
        "endpoint": store.endpoint,
        "safety_stock": store.safety_stock,
        # Which credential fields are set, never their values.
        "credentials": sorted(credentials.configured_keys(store)),
        "consecutive_failures": store.consecutive_failures,
        "last_success_at": store.last_success_at,
        "last_error": store.last_error,
        # The mall credential that expires (tatenpo.setup.credential_dates): when it was entered or renewed and
        # when it expires, ISO 8601 in UTC; null when unknown or when the mall's credential does not expire.
        "credentials_renewed_at": _utc_iso(store.credentials_renewed_at),
        "credentials_expire_at": _utc_iso(store.credentials_expire_at),
    }


def _utc_iso(value) -> str | None:
    return value.replace(tzinfo=timezone.utc).isoformat() if value else None


def register(app) -> None:
    @app.cli.group("stores")
    def group() -> None:
        """EC sites (stores)."""

    @group.command("add")
    @click.option("--mall", required=True, type=click.Choice(malls.keys()))
    @click.option("--name", required=True)
    @click.option("--endpoint", help="Base URL of the mall's API (a sandbox store's endpoint, for example).")
    @click.option("--credential", "credential_pairs", multiple=True, metavar="KEY=VALUE")
    @click.option("--auto-sync/--no-auto-sync", default=False, show_default=True)
    @click.option("--immediate-sync/--no-immediate-sync", default=False, show_default=True)
    @click.option("--safety-stock", type=click.IntRange(min=0), default=0, show_default=True)
    @click.option("--json", "as_json", is_flag=True)
    def add(mall, name, endpoint, credential_pairs, auto_sync, immediate_sync, safety_stock, as_json) -> None:
        """Add a store and print its id."""
        values = {}
        for pair in credential_pairs:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                fail(f"--credential takes KEY=VALUE, got {pair!r}")
            values[key.strip()] = value
        try:
            store = stores.create_store(
                mall, name, endpoint=endpoint, credential_values=values, auto_sync=auto_sync,
                immediate_sync=immediate_sync, safety_stock=safety_stock,
            )
        except stores.StoreError as exc:
            fail(exc.message)
        if credential_dates.renews(mall, values):
            credential_dates.note_renewal(store)
        db.session.commit()
        emit(_store_data(store), as_json, text=str(store.id))

    @group.command("list")
    @click.option("--json", "as_json", is_flag=True)
    def list_(as_json) -> None:
        """List the stores."""
        rows = [_store_data(s) for s in db.session.scalars(select(Store).order_by(Store.id))]
        if as_json:
            emit(rows, True)
            return
        for row in rows:
            state = "使用中" if row["auto_sync"] else "停止中"
            click.echo(f"{row['id']}\t{row['mall']}\t{row['name']}\t{state}\t{','.join(row['credentials'])}")
