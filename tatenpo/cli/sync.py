"""`flask sync run|status|history|prune`: push now, see what is pending, read 在庫同期履歴 from the shell, and
delete its old lines."""
from __future__ import annotations

import click
from sqlalchemy import select

from tatenpo.cli.output import emit, fail
from tatenpo.models import Store, SyncEntry
from tatenpo.platform.extensions import db
from tatenpo.sync import retention, runner, status


def _store(store_id: int) -> Store:
    store = db.session.get(Store, store_id)
    if store is None:
        fail(f"no store {store_id}")
    return store


def _push(store_id: int) -> dict:
    """One push of one store, taking the same per-store lock as the worker (never two at once)."""
    outcome = runner.push_locked(store_id, "cli", wait_seconds=60)
    if outcome is None:
        fail(f"store {store_id}: another push is still running; try again in a minute")
    if outcome.run is None:
        return {"store_id": store_id, "status": "nothing", "total": 0}
    return status.run_data(outcome.run)


def _line(data: dict) -> str:
    if data.get("status") == "nothing":
        return f"store {data['store_id']}: nothing to push"
    text = (f"store {data['store_id']}: run {data['id']} {data['status']} — {data['total']} items, "
            f"✓ {data['succeeded']}  ✗ {data['failed']} (retry {data['retried']})  {data['duration_ms'] or 0} ms")
    if data.get("message"):
        text += f"\n  {data['message']}"
    return text


def register(app) -> None:
    @app.cli.group("sync")
    def group() -> None:
        """Stock sync (在庫同期): push, status, history, prune."""

    @group.command("run")
    @click.option("--store", "store_id", type=int, help="Only this store (default: every store with pending entries).")
    @click.option("--json", "as_json", is_flag=True)
    def run(store_id: int | None, as_json: bool) -> None:
        """Push pending entries now, synchronously, and print each store's SyncRun."""
        if store_id is not None:
            ids = [_store(store_id).id]
        else:
            ids = list(db.session.scalars(select(SyncEntry.store_id).distinct().order_by(SyncEntry.store_id)))
        results = [_push(i) for i in ids]
        if as_json:
            emit(results[0] if store_id is not None else results, True)
        elif not results:
            click.echo("nothing to push")
        else:
            for data in results:
                click.echo(_line(data))

    @group.command("status")
    @click.option("--json", "as_json", is_flag=True)
    def status_(as_json: bool) -> None:
        """Due and in-flight counts, each store's last run, and the scheduler's health."""
        data = {"counts": status.counts(), "scheduler": status.scheduler_state(), "stores": status.store_states()}
        if as_json:
            emit(data, True)
            return
        c, s = data["counts"], data["scheduler"]
        click.echo(f"pending {c['pending']:,}  due {c['due']:,}  in flight {c['in_flight']:,}")
        tick = s["last_tick"].strftime("%Y-%m-%d %H:%M:%S UTC") if s["last_tick"] else "never"
        alert = "  ⚠ NO RUN FOR TWO INTERVALS" if s["stale"] else ""
        click.echo(f"scheduler: last tick {tick} (interval {s['interval_seconds']} s){alert}")
        for store in data["stores"]:
            last = store["last_run"]
            last_text = f"last run {last['status']} {last['started_at']:%Y-%m-%d %H:%M:%S}" if last else "never run"
            click.echo(f"  [{store['id']}] {store['name']} ({store['mall']}) pending {store['pending']:,}  "
                       f"failures {store['consecutive_failures']}  {last_text}")

    @group.command("history")
    @click.option("--store", "store_id", type=int)
    @click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
    @click.option("--json", "as_json", is_flag=True)
    def history(store_id: int | None, limit: int, as_json: bool) -> None:
        """The newest lines of 在庫同期履歴."""
        if store_id is not None:
            _store(store_id)
        rows = status.history(store_id=store_id, limit=limit)
        if as_json:
            emit([r.as_dict() for r in rows], True)
            return
        for r in rows:
            mark = {"ok": "✓", "ng": "✗", "retry": "↻"}[r.result]
            what = r.listing_code if r.kind == "attempt" else f"({r.total} items)"
            quantity = "" if r.quantity is None else f" → {r.quantity}"
            click.echo(f"{r.at:%Y-%m-%d %H:%M:%S} {mark} [{r.store_name}] {what}{quantity}  {r.message or ''}".rstrip())

    @group.command("prune")
    @click.option("--days", type=click.IntRange(1), default=None,
                  help="Keep this many days (default: SYNC_HISTORY_DAYS, 90).")
    @click.option("--json", "as_json", is_flag=True)
    def prune(days: int | None, as_json: bool) -> None:
        """Delete 在庫同期履歴 older than the kept days (each listing's newest result and each store's last run
        stay). The scheduler does this once a day."""
        result = retention.prune(days)
        if as_json:
            emit(result.as_dict(), True)
        else:
            click.echo(f"deleted {result.attempts:,} attempts and {result.runs:,} runs from before "
                       f"{result.before:%Y-%m-%d %H:%M} UTC")
