"""`flask orders …`: 受注 from the shell. `import-mail` is the shell's door of 自動受注メール取込: saved order
mails (.eml) are stored like any received mail and read at once, in this process. `list`, `show`, `ship`
and `cancel` do what the 受注 screens do; `reparse` reads stored mails again (after a parser fix); `poll` reads
the malls' order APIs now (受注API, tatenpo.orders.polling).

Each subcommand is a function taking the group (`_import_mail(group)`), and `register` adds them in turn.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click
from sqlalchemy import select

from tatenpo.cli.output import emit, fail
from tatenpo.models import InboundMail, Order, Store
from tatenpo.orders import book, intake, queries, reading
from tatenpo.platform.extensions import db


@dataclass
class _Planned:
    """One file to import, checked before anything is stored: its bytes, its store and the address it came to."""

    path: Path
    raw: bytes
    store: Store
    recipient: str


def _plan(paths: tuple[Path, ...], store_id: int | None) -> list[_Planned]:
    """Every file's store and size checked first, so one bad file stops the command before any is stored."""
    store = None
    if store_id is not None:
        store = db.session.get(Store, store_id)
        if store is None:
            fail(f"no store {store_id}")
    limit = intake.max_bytes()
    planned = []
    for path in paths:
        raw = path.read_bytes()
        if len(raw) > limit:
            fail(f"{path}: the mail is larger than {limit // (1024 * 1024)} MB")
        if not raw.strip():
            fail(f"{path}: the file is empty")
        recipients = intake.recipients_of(raw)
        if store is not None:
            issued = (store.order_mail_address or "").lower()
            recipient = next((a for a in recipients if a.lower() == issued), store.order_mail_address or "")
            planned.append(_Planned(path, raw, store, recipient))
            continue
        found = next(((a, s) for a in recipients if (s := intake.store_for_address(a)) is not None), None)
        if found is None:
            shown = ", ".join(recipients) or "no To/Delivered-To address"
            fail(f"{path}: {shown} is not an order-mail address of any store; name the store with --store ID")
        planned.append(_Planned(path, raw, found[1], found[0]))
    return planned


def _import_one(item: _Planned) -> dict:
    mail = intake.receive(item.raw, item.store, recipient=item.recipient, via="shell")
    outcome = reading.read(mail.id)
    return {"file": str(item.path), "store_id": item.store.id, **outcome.as_dict()}


def _line_text(line: dict) -> str:
    code = line["code"] + (f" / {line['variant']}" if line.get("variant") else "")
    matched = "" if line.get("matched") else "  (not linked to a product)"
    title = f"  {line['title']}" if line.get("title") else ""
    return f"    {code} × {line['quantity']}{title}{matched}"


def _result_text(result: dict) -> str:
    head = f"{result['file']}: mail {result['mail_id']} → store {result['store_id']}: "
    if result["status"] == "order":
        known = " (already known: nothing moved again)" if result["duplicate"] else ""
        return "\n".join([head + f"order {result['order_number']}{known}"] + [_line_text(l) for l in result["lines"]])
    return head + f"{result['status']} — {result['reason']}"


def _import_mail(group: click.Group) -> None:
    @group.command("import-mail")
    @click.option("--store", "store_id", type=int,
                  help="The store the mails belong to (default: the store whose order-mail address is in To/Delivered-To).")
    @click.argument("files", nargs=-1, required=True,
                    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
    @click.option("--json", "as_json", is_flag=True)
    def import_mail(store_id: int | None, files: tuple[Path, ...], as_json: bool) -> None:
        """Store saved order mails (.eml) and read them at once; print each order and its lines, or why a
        mail was not an order. Exits 1 when a mail could not be read (it stays stored for `orders reparse`)."""
        results = [_import_one(item) for item in _plan(files, store_id)]
        if as_json:
            emit(results, True)
        else:
            for result in results:
                click.echo(_result_text(result))
        if any(result["status"] == "failed" for result in results):
            raise SystemExit(1)


def _order_data(order: Order, full: bool = False) -> dict:
    data = {"id": order.id, "store_id": order.store_id, "store": order.store.name, "number": order.number,
            "status": order.status, "mall_status": order.mall_status, "moves_stock": order.moves_stock,
            "sources": list(order.sources or []), "ordered_at": order.ordered_at,
            "received_at": order.received_at, "shipped_at": order.shipped_at, "cancelled_at": order.cancelled_at,
            "lines": [{"code": line.item_code, "variant": line.variant_code, "choices": line.choices,
                       "title": line.title, "quantity": line.quantity, "unit_price": line.unit_price,
                       "listing_id": line.listing_id, "product_id": line.product_id,
                       "product_code": line.product.code if line.product else None, "stock": line.stock}
                      for line in order.lines]}
    if full:
        view = queries.order_view(order)
        data["mails"] = [{"id": mail.id, "sender": mail.sender, "subject": mail.subject, "via": mail.via,
                          "received_at": mail.received_at, "status": mail.status} for mail in view.mails]
        data["history"] = [{"product_code": h.product_code, "kind": h.kind_enum.name.lower(), "change": h.change,
                            "allocated_change": h.allocated_change, "at": h.created_at} for h in view.history]
    return data


def _summary(order: Order) -> str:
    lines = ", ".join(f"{line.item_code} × {line.quantity}" for line in order.lines)
    unlinked = "  [unlinked]" if any(line.listing_id is None for line in order.lines) else ""
    return (f"{order.received_at:%Y-%m-%d %H:%M}  store {order.store_id}  {order.number}  {order.status}  "
            f"{'/'.join(order.sources or [])}  {lines}{unlinked}")


def _found(number: str, store_id: int | None) -> Order:
    """The one order with this 受注番号 (in the named store); a clear failure when none or several."""
    if store_id is not None and db.session.get(Store, store_id) is None:
        fail(f"no store {store_id}")
    found = queries.with_number(number, store_id)
    if not found:
        where = f" in store {store_id}" if store_id is not None else ""
        fail(f"no order {number}{where}")
    if len(found) > 1:
        stores = ", ".join(str(order.store_id) for order in found)
        fail(f"order {number} exists in stores {stores}: name one with --store ID")
    return found[0]


def _list(group: click.Group) -> None:
    @group.command("list")
    @click.option("--store", "store_id", type=int, help="Only this store's orders.")
    @click.option("--status", type=click.Choice(queries.STATUSES), help="Only orders in this status.")
    @click.option("--json", "as_json", is_flag=True)
    def list_orders(store_id: int | None, status: str | None, as_json: bool) -> None:
        """The newest orders (200 at most), with their lines."""
        found = queries.orders(queries.OrderFilters(store=store_id, status=status))
        if as_json:
            emit([_order_data(order) for order in found], True)
        elif not found:
            click.echo("no orders")
        else:
            for order in found:
                click.echo(_summary(order))


def _show(group: click.Group) -> None:
    @group.command("show")
    @click.argument("number")
    @click.option("--store", "store_id", type=int, help="The store, when the number exists in several.")
    @click.option("--json", "as_json", is_flag=True)
    def show(number: str, store_id: int | None, as_json: bool) -> None:
        """One order: its lines and their stock, the doors it came through, its mails and 在庫履歴."""
        data = _order_data(_found(number, store_id), full=True)
        if as_json:
            emit(data, True)
            return
        click.echo(f"{data['number']}  store {data['store_id']} ({data['store']})  {data['status']}  "
                   f"came by {', '.join(data['sources']) or '-'}")
        for line in data["lines"]:
            code = line["code"] + (f" / {line['variant']}" if line["variant"] else "")
            product = line["product_code"] or "unlinked"
            click.echo(f"    {code} × {line['quantity']}  → {product}  stock: {line['stock']}")
        for mail in data["mails"]:
            click.echo(f"  mail {mail['id']}  {mail['received_at']:%Y-%m-%d %H:%M}  {mail['sender']}  {mail['subject']}")
        for h in data["history"]:
            click.echo(f"  history {h['product_code']}  {h['kind']}  on hand {h['change']:+d}  "
                       f"allocated {h['allocated_change']:+d}")


def _move(order: Order, action, as_json: bool, done: str) -> None:
    try:
        action(order)
    except book.OrderError as exc:
        db.session.rollback()
        fail(exc.message)
    db.session.commit()
    emit(_order_data(order), as_json, f"order {order.number} (store {order.store_id}) {done}")


def _ship(group: click.Group) -> None:
    @group.command("ship")
    @click.argument("number")
    @click.option("--store", "store_id", type=int, help="The store, when the number exists in several.")
    @click.option("--json", "as_json", is_flag=True)
    def ship(number: str, store_id: int | None, as_json: bool) -> None:
        """出荷済み: the order's units leave stock (在庫数 and 引当数 fall)."""
        order = queries.locked(_found(number, store_id).id)
        _move(order, book.ship, as_json, "shipped")


def _cancel(group: click.Group) -> None:
    @group.command("cancel")
    @click.argument("number")
    @click.option("--store", "store_id", type=int, help="The store, when the number exists in several.")
    @click.option("--restock", is_flag=True, help="Put the units of a shipped order back into stock (再入庫).")
    @click.option("--json", "as_json", is_flag=True)
    def cancel(number: str, store_id: int | None, restock: bool, as_json: bool) -> None:
        """キャンセル: the allocation is released; a shipped order's units come back only with --restock."""
        order = queries.locked(_found(number, store_id).id)
        _move(order, lambda o: book.cancel(o, restock=restock), as_json,
              "cancelled and restocked" if restock else "cancelled")


def _reparse(group: click.Group) -> None:
    @group.command("reparse")
    @click.option("--failed", "only_failed", is_flag=True, help="Only the mails that failed to be read.")
    @click.option("--json", "as_json", is_flag=True)
    def reparse(only_failed: bool, as_json: bool) -> None:
        """Read stored mails again (every mail, or only the failed ones) and print each outcome. An order read
        again is the same order: nothing moves twice. Exits 1 when a mail still fails."""
        ids = reading.failed_ids() if only_failed else list(
            db.session.scalars(select(InboundMail.id).order_by(InboundMail.id)))
        outcomes = [outcome.as_dict() for outcome in reading.read_all(ids, again=True)]
        if as_json:
            emit(outcomes, True)
        elif not outcomes:
            click.echo("no mails to read")
        else:
            for outcome in outcomes:
                if outcome["status"] == "order":
                    known = " (already known: nothing moved again)" if outcome["duplicate"] else ""
                    click.echo(f"mail {outcome['mail_id']}: order {outcome['order_number']}{known}")
                else:
                    click.echo(f"mail {outcome['mail_id']}: {outcome['status']} — {outcome['reason']}")
        if any(outcome["status"] == "failed" for outcome in outcomes):
            raise SystemExit(1)


def _import_csv(group: click.Group) -> None:
    @group.command("import")
    @click.argument("files", nargs=-1, required=True,
                    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
    @click.option("--store", "store_id", type=int, required=True, help="The store the file was downloaded from.")
    @click.option("--dry-run", is_flag=True, help="Say what would change; change nothing.")
    @click.option("--json", "as_json", is_flag=True)
    def import_csv(files: tuple[Path, ...], store_id: int, dry_run: bool, as_json: bool) -> None:
        """受注取込: a mall's order CSV (楽天 受注CSV, Yahoo 注文データ order + item files or their zip, Amazon
        注文レポート, Shopify orders export) into the store's orders, all or nothing. An order another door
        brought is the same order; importing a file again moves nothing. Exits 1 when a row is wrong."""
        import shutil
        import tempfile

        from tatenpo.listings.reading import FileProblem
        from tatenpo.orders.order_csv import importer

        store = db.session.get(Store, store_id)
        if store is None:
            fail(f"no store {store_id}")
        with tempfile.TemporaryDirectory(prefix="tatenpo-orders-") as folder:
            copies = []  # read from copies: a zip is unpacked beside the file it came in
            for number, path in enumerate(files, start=1):
                copy = Path(folder) / f"{number}{path.suffix.lower()}"
                shutil.copyfile(path, copy)
                copies.append((copy, path.name))
            try:
                outcome = importer.run(store, copies, commit=not dry_run)
            except FileProblem as problem:
                where = f" (row {problem.row})" if problem.row else ""
                fail(f"{problem.message}{where}")
        if as_json:
            emit({**outcome.as_dict(), "dry_run": dry_run}, True)
        elif outcome.refused:
            for problem in outcome.problems:
                click.echo(f"{problem.file} row {problem.row or '-'} {problem.column or ''}: {problem.message}")
            click.echo(f"{outcome.problem_count} problem(s): nothing was imported")
        else:
            for order in outcome.orders:
                click.echo(f"{order['number']}: {importer.ACTION_LABELS[order['action']]}")
            counts = ", ".join(f"{action} {n}" for action, n in outcome.counts.items() if n)
            click.echo(f"{outcome.format}: {len(outcome.orders)} order(s) — {counts}"
                       + (" (dry run: nothing was changed)" if dry_run else ""))
        if outcome.refused:
            raise SystemExit(1)


def _poll(group: click.Group) -> None:
    @group.command("poll")
    @click.option("--store", "store_id", type=int, help="Only this store (default: every store whose order API is on).")
    @click.option("--since", help="Read orders changed since this time (ISO 8601; without a zone, UTC) instead of "
                                  "from the store's cursor.")
    @click.option("--json", "as_json", is_flag=True)
    def poll(store_id: int | None, since: str | None, as_json: bool) -> None:
        """Read the malls' order APIs now (受注API) and print the orders created or changed."""
        from datetime import datetime, timezone

        from tatenpo.orders import polling

        start = None
        if since:
            try:
                start = datetime.fromisoformat(since.replace("Z", "+00:00"))
            except ValueError:
                fail(f"--since {since!r} is not an ISO 8601 time (e.g. 2026-11-30T10:00:00+09:00)")
            if start.tzinfo is not None:
                start = start.astimezone(timezone.utc).replace(tzinfo=None)
        if store_id is not None:
            store = db.session.get(Store, store_id)
            if store is None:
                fail(f"no store {store_id}")
            if not polling.can_poll(store):
                fail(f"store {store_id} ({store.mall}) has no order API Tatenpo reads")
            ids = [store_id]
        else:
            ids = list(db.session.scalars(select(Store.id).where(Store.order_api.is_(True)).order_by(Store.id)))
            if not ids:
                fail("no store has its order API on: turn it on in the store settings, or name one with --store ID")
        results = []
        for sid in ids:
            try:
                result = polling.poll(sid, since=start)
            except polling.PollBusy:
                results.append({"store": sid, "busy": True, "error": "another poll of this store is running",
                                "orders": []})
                continue
            results.append({"store": sid, "since": result.since, "cursor": result.cursor, "seen": result.seen,
                            "error": result.error, "orders": result.orders})
        if as_json:
            emit(results, True)
        else:
            for result in results:
                if result["error"]:
                    click.echo(f"store {result['store']}: failed: {result['error']}")
                    continue
                click.echo(f"store {result['store']}: {result['seen']} order(s) read, {len(result['orders'])} "
                           f"created or changed")
                for order in result["orders"]:
                    click.echo(f"  {order['number']}  {'new' if order['created'] else 'changed'}  {order['status']}"
                               f"  ({order['mall_status'] or '-'})  {'/'.join(order['sources'])}"
                               + ("" if order["moves_stock"] else "  [fulfilled by the mall]"))
        if any(result["error"] for result in results):
            raise SystemExit(1)


def _route(group: click.Group) -> None:
    @group.command("route")
    @click.argument("store_id", type=int)
    @click.option("--api", type=click.Choice(["on", "off"]), help="Read the store's orders from its order API.")
    @click.option("--interval", default=None, help="The store's own poll interval in seconds ('' for the default).")
    @click.option("--json", "as_json", is_flag=True)
    def route(store_id: int, api: str | None, interval: str | None, as_json: bool) -> None:
        """A store's order routes (mail, order API, webhook): show them, or switch the order API and its interval."""
        from tatenpo.orders import polling

        store = db.session.get(Store, store_id)
        if store is None:
            fail(f"no store {store_id}")
        if api is not None or interval is not None:
            try:
                polling.set_route(store, on=(api == "on") if api is not None else store.order_api,
                                  interval_text=interval if interval is not None else str(store.order_poll_seconds or ""))
            except polling.RouteError as exc:
                db.session.rollback()
                fail(exc.message)
            db.session.commit()
        data = {"store": store.id, "mail": {"address": store.order_mail_address, "last": store.last_order_mail_at},
                "api": {"on": store.order_api, "available": polling.can_poll(store),
                        "interval": polling.interval(store), "last": store.order_polled_at,
                        "cursor": store.order_cursor_at, "error": store.order_poll_error},
                "webhook": {"on": store.webhooks_on, "last": store.last_webhook_at}}
        emit(data, as_json, f"store {store.id}: mail {'on' if store.order_mail_address else 'off'}, "
                            f"api {'on' if store.order_api else 'off'} (every {polling.interval(store)} s"
                            + (f", failing: {store.order_poll_error}" if store.order_poll_error else "") + "), "
                            f"webhook {'on' if store.webhooks_on else 'off'}")


def register(app) -> None:
    @app.cli.group("orders")
    def group() -> None:
        """受注: order mails and orders."""

    _import_mail(group)
    _list(group)
    _show(group)
    _ship(group)
    _cancel(group)
    _reparse(group)
    _import_csv(group)
    _poll(group)
    _route(group)
