"""`flask listings import`: 販売取込 from the shell, with the same preview and all-or-nothing rules as the
screen. --dry-run prints the preview only; --json prints the preview counts (and result) as JSON."""
from __future__ import annotations

import click

from tatenpo.cli.output import emit, fail
from tatenpo.listings import detect, importer, uploads
from tatenpo.listings.reading import FileProblem
from tatenpo.models import ImportJob, Store
from tatenpo.platform.extensions import db


def register(app) -> None:
    @app.cli.group("listings")
    def group() -> None:
        """Listings (販売データ)."""

    @group.command("import")
    @click.option("--store", "store_id", type=int, required=True, help="The EC site's id (see `flask stores list`).")
    @click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
    @click.option("--format", "format_name", type=click.Choice([f.name for f in detect.FORMATS]),
                  help="Skip recognition and read the file as this format.")
    @click.option("--create-products/--no-create-products", default=True, show_default=True,
                  help="Create missing products (starting stock = the file's stock) or leave listings unlinked.")
    @click.option("--dry-run", is_flag=True, help="Preview only: write nothing.")
    @click.option("--json", "as_json", is_flag=True)
    def import_(store_id, files, format_name, create_products, dry_run, as_json) -> None:
        """Import a mall's listing CSV (FILE; Rakuten item.csv and select.csv may be given together)."""
        store = db.session.get(Store, store_id)
        if store is None:
            fail(f"no store with id {store_id}")
        streams = [open(path, "rb") for path in files]
        try:
            job = uploads.save_upload(
                [(path, stream) for path, stream in zip(files, streams)], kind="listings", store_id=store.id,
                user_id=None, options={"format": format_name, "create_products": create_products},
            )
        except FileProblem as problem:
            db.session.rollback()
            fail(problem.message)
        finally:
            for stream in streams:
                stream.close()
        db.session.flush()
        importer.preview_job(job)
        db.session.commit()
        data = _preview_data(job)
        if job.status == "failed":
            uploads.discard(job)
            _report(data, as_json)
            fail(job.message)
        if dry_run or job.error_count:
            uploads.discard(job)
            _report(data, as_json)
            if job.error_count:
                fail(f"{job.error_count} rows have errors; nothing was imported")
            return
        try:
            job = importer.run_job(job.id)
        except Exception as exc:  # the job is already marked failed with the reason
            failed = db.session.get(ImportJob, job.id)
            _report(_preview_data(failed), as_json)
            fail(failed.message or str(exc))
        data = _preview_data(job)
        _report(data, as_json)


def _preview_data(job: ImportJob) -> dict:
    return {
        "job": job.id,
        "status": job.status,
        "format": job.format,
        "encoding": job.encoding,
        "counts": (job.preview or {}).get("counts", {}),
        "errors": (job.errors or [])[:20],
        "error_count": job.error_count,
        "result": job.result or None,
        "message": job.message,
    }


def _report(data: dict, as_json: bool) -> None:
    if as_json:
        emit(data, True)
        return
    counts = data["counts"]
    if counts:
        click.echo(f"{data['format']} ({data['encoding']}): {counts.get('rows', 0):,} rows")
        click.echo(
            f"  新規 {counts.get('new', 0):,}  更新 {counts.get('updated', 0):,}  変更なし {counts.get('unchanged', 0):,}"
            f"  商品作成 {counts.get('products_to_create', 0):,}  未紐付け {counts.get('unlinked', 0):,}"
            f"  エラー {counts.get('errors', 0):,}"
        )
    for error in data["errors"]:
        click.echo(f"  {error.get('row') or '-'}行目 {error.get('column') or ''}: {error.get('message')}")
    if data["status"] == "done":
        click.echo(data["message"])
