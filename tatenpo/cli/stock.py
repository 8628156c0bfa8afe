"""`flask stock set|show`: one product's stock from the shell."""
from __future__ import annotations

import click
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from tatenpo.cli.output import emit, export_command, fail
from tatenpo.listings import uploads
from tatenpo.listings.reading import FileProblem
from tatenpo.models import ImportJob, Listing, Product, StockChangeKind, SyncEntry
from tatenpo.platform.extensions import db
from tatenpo.stock import inventory, stock_csv


def find_product(code: str) -> Product:
    product = db.session.scalar(select(Product).where(Product.code == code))
    if product is None:
        fail(f"no product with 商品コード {code!r}")
    return product


def product_state(product: Product) -> dict:
    listings = db.session.scalars(
        select(Listing).options(joinedload(Listing.store)).where(Listing.product_id == product.id).order_by(Listing.id)
    ).all()
    entries = {
        e.listing_id: e
        for e in db.session.scalars(select(SyncEntry).where(SyncEntry.listing_id.in_([l.id for l in listings])))
    }
    return {
        "code": product.code,
        "name": product.name,
        "on_hand": product.on_hand,
        "allocated": product.allocated,
        "sellable": product.sellable,  # a set's: computed from its parts
        "set": product.is_set,
        "stock_managed": product.stock_managed,
        "listings": [
            {
                "store_id": l.store_id,
                "store": l.store.name,
                "mall": l.store.mall,
                "code": l.code,
                "item_code": l.item_code,
                "variant_code": l.variant_code,
                "target_quantity": inventory.pushed_quantity(l, product, l.store),
                "pending": l.id in entries,
                "pending_quantity": entries[l.id].target_quantity if l.id in entries else None,
                "last_pushed_quantity": l.last_pushed_quantity,
                "last_pushed_at": l.last_pushed_at,
                "mall_quantity": l.mall_quantity,
                "reflected": l.reflected,
            }
            for l in listings
        ],
    }


def register(app) -> None:
    @app.cli.group("stock")
    def group() -> None:
        """Products' stock (在庫)."""

    @group.command("set")
    @click.argument("product_code")
    @click.argument("quantity")
    @click.option("--note", default=None)
    def set_(product_code: str, quantity: str, note: str | None) -> None:
        """Set 在庫数 of a product; its listings are scheduled for sync."""
        product = find_product(product_code)
        try:
            entry = inventory.set_stock(product, quantity, kind=StockChangeKind.MANUAL, note=note)
        except inventory.StockError as exc:
            db.session.rollback()
            fail(exc.message)
        db.session.commit()
        click.echo(f"{product_code}: {entry.quantity_after - entry.change} → {entry.quantity_after}")

    @group.command("show")
    @click.argument("product_code")
    @click.option("--json", "as_json", is_flag=True)
    def show(product_code: str, as_json: bool) -> None:
        """Show on hand, allocated, sellable and each listing's sync state."""
        state = product_state(find_product(product_code))
        if as_json:
            emit(state, True)
            return
        click.echo(f"{state['code']}  {state['name']}")
        if state["set"]:
            click.echo(f"セット商品  販売可能数 {state['sellable']:,}  (構成商品: flask --app app sets show "
                       f"{state['code']})")
        else:
            click.echo(f"在庫数 {state['on_hand']:,}  引当数 {state['allocated']:,}  販売可能数 {state['sellable']:,}")
        for l in state["listings"]:
            pending = f"同期待ち {l['pending_quantity']}" if l["pending"] else "同期済み"
            click.echo(f"  [{l['store']}] {l['code']}  {pending}  最終送信 {l['last_pushed_quantity']}")

    export_command(group, stock_csv.export_csv, "products",
                   "在庫出力: write 商品コード, 商品名, 在庫数, 引当数, 販売可能数 of every product to FILE.")

    @group.command("import")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    @click.option("--dry-run", is_flag=True, help="Preview only: write nothing.")
    @click.option("--json", "as_json", is_flag=True)
    def import_(file: str, dry_run: bool, as_json: bool) -> None:
        """在庫取込: set 在庫数 from a CSV of 商品コード, 在庫数 (all rows or none; history and sync follow)."""
        with open(file, "rb") as stream:
            try:
                job = uploads.save_upload([(file, stream)], kind="stock", store_id=None, user_id=None)
            except FileProblem as problem:
                db.session.rollback()
                fail(problem.message)
        db.session.flush()
        stock_csv.preview_job(job)
        db.session.commit()

        def report(job: ImportJob) -> None:
            data = {
                "job": job.id, "status": job.status, "encoding": job.encoding,
                "counts": (job.preview or {}).get("counts", {}), "errors": (job.errors or [])[:20],
                "error_count": job.error_count, "result": job.result or None, "message": job.message,
            }
            if as_json:
                emit(data, True)
                return
            counts = data["counts"]
            if counts:
                click.echo(f"{counts.get('rows', 0):,} rows: 変更 {counts.get('changed', 0):,}  "
                           f"変更なし {counts.get('unchanged', 0):,}  エラー {counts.get('errors', 0):,}")
            for error in data["errors"]:
                click.echo(f"  {error.get('row') or '-'}行目 {error.get('column') or ''}: {error.get('message')}")
            if job.status == "done":
                click.echo(job.message)

        if job.status == "failed" or dry_run or job.error_count:
            uploads.discard(job)
            report(job)
            if job.status == "failed":
                fail(job.message)
            if job.error_count:
                fail(f"{job.error_count} rows have errors; nothing was imported")
            return
        try:
            job = stock_csv.run_job(job.id)
        except Exception as exc:
            failed = db.session.get(ImportJob, job.id)
            report(failed)
            fail(failed.message or str(exc))
        report(job)
