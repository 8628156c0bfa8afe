"""Shared steps for the listing-import tests: upload a file as the shop would, preview it, import it, and run
the worker that previews and imports uploads from the pages."""
from __future__ import annotations

import io
from pathlib import Path

from rq import SimpleWorker
from sqlalchemy import select

from tatenpo.listings import importer, uploads
from tatenpo.models import ImportJob, Listing, Product, StockHistory
from tatenpo.platform.extensions import db
from tatenpo.platform.redis_conn import queue, redis

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "listings"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def run_worker(app) -> None:
    """A real RQ worker on the test Redis, in burst mode: runs what is queued on "imports" (previews and
    imports) and stops."""
    with app.app_context():
        SimpleWorker([queue("imports")], connection=redis()).work(burst=True)


def upload(store_id, *files, **options) -> int:
    """files: (filename, bytes) pairs or fixture names. Returns the previewed ImportJob's id."""
    streams = []
    for item in files:
        name, data = (item, fixture(item)) if isinstance(item, str) else item
        streams.append((name, io.BytesIO(data)))
    job = uploads.save_upload(streams, kind="listings", store_id=store_id, user_id=None, options=options)
    db.session.flush()
    importer.preview_job(job)
    db.session.commit()
    return job.id


def import_file(store_id, *files, **options) -> ImportJob:
    """Upload, preview and import in one go; returns the finished job (raises what the job raised)."""
    job_id = upload(store_id, *files, **options)
    return importer.run_job(job_id)


def listings_of(store_id) -> dict[tuple[str, str], Listing]:
    rows = db.session.scalars(select(Listing).where(Listing.store_id == store_id)).all()
    return {(l.item_code, l.variant_code): l for l in rows}


def product(code: str):
    return db.session.scalar(select(Product).where(Product.code == code))


def snapshot() -> tuple:
    """Everything an import could touch, to prove that a refused one touched nothing."""
    listings = db.session.execute(
        select(Listing.id, Listing.item_code, Listing.variant_code, Listing.code, Listing.title, Listing.product_id,
               Listing.mall_quantity).order_by(Listing.id)
    ).all()
    products = db.session.execute(select(Product.id, Product.code, Product.on_hand).order_by(Product.id)).all()
    history = db.session.execute(select(StockHistory.id)).all()
    return (listings, products, history)
