"""販売取込: read the uploaded file(s), preview what would change, and import it all in one transaction.

Preview and import run the same code (`analyse`), so what the shop confirmed is what happens. The import
writes nothing unless every row is valid; re-importing the same file changes nothing. New products get the
file's stock as their starting stock, with a 在庫履歴 row of kind LISTING_IMPORT; newly linked listings of a
store with 自動在庫同期 on are put on the sync schedule through tatenpo.inventory.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from flask_babel import lazy_gettext as _l
from ..extensions import db
from ..models import ImportJob, Listing, Product, StockChangeKind, StockHistory, Store, utcnow
from . import detect, lifecycle, scheduling, uploads
from .base import Format
from .bulk import BulkWriter, fold, search_text
from .linking import Plan, build_plan, select_subset
from .reading import ENCODING_LABELS, FileProblem, Table, open_table
from .records import ERRORS_ON_JOB, Problems

Progress = Optional[Callable[[str, int, int], None]]
_WRITE_CHUNK = 2000


@dataclass
class Analysis:
    format: Format
    encoding: str
    plan: Plan
    problems: Problems
    tables: list[Table] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, Any]:
        counts = self.plan.counts()
        counts["errors"] = self.problems.error_count
        counts["skipped"] = self.problems.skipped
        return counts


def open_tables(files: list[tuple[Any, str]]) -> list[Table]:
    if not files:
        raise FileProblem(_l("Choose a CSV file to upload."))
    return [open_table(path, name) for path, name in files]


def analyse(
    store: Store,
    files: list[tuple[Any, str]],
    *,
    forced_format: Optional[str] = None,
    create_products: bool = True,
    items: Optional[list[str]] = None,
    first_items: Optional[int] = None,
    report: Progress = None,
    total: int = 0,
) -> Analysis:
    """Everything the import would do, without writing. Raises FileProblem for a file that cannot be used."""
    tables = open_tables(files)
    settings = store.settings or {}
    chosen = detect.detect(tables, settings, forced_format)
    if store.mall not in chosen.malls:
        raise FileProblem(
            _l("This is a %(format)s file, but the store “%(store)s” is on another mall.",
               format=chosen.label, store=store.name)
        )
    problems = Problems()
    records = select_subset(chosen.read(tables, problems, settings), items, first_items)
    plan = build_plan(store.id, records, problems, create_products=create_products, progress=report, total=total)
    if plan.rows == 0 and problems.error_count == 0 and problems.skipped == 0:
        raise FileProblem(_l("The file has a header row but no listings."), row=2)
    encoding = ENCODING_LABELS.get(tables[0].encoding, tables[0].encoding)
    return Analysis(chosen, encoding, plan, problems, tables)


def write(store: Store, plan: Plan, *, note: str, user_id: Optional[int], report: Progress = None) -> dict[str, int]:
    """Apply a plan in the caller's transaction (bulk statements, no ORM object per row); returns counts."""
    bulk = BulkWriter()
    now = bulk.time(utcnow())
    total = len(plan.create) + len(plan.new) + len(plan.changed)
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if report is not None:
            report("write", done, total)

    # Titles are folded once for the product and its listing alike (the costly part of search_text).
    titles: dict[str, str] = {}

    def folded(title: str) -> str:
        value = titles.get(title)
        if value is None:
            value = titles[title] = fold(title)
        return value

    products = Product.__table__
    before = bulk.max_id(products)
    items = list(plan.create.items())
    for start in range(0, len(items), _WRITE_CHUNK):
        chunk = items[start : start + _WRITE_CHUNK]
        bulk.insert(
            products,
            ("code", "name", "on_hand", "allocated", "stock_managed", "version", "search_text", "created_at", "updated_at"),
            [(code, data["name"], data["quantity"], 0, True, 0, f"{fold(code)} {folded(data['name'])}".strip()[:800],
              now, now) for code, data in chunk],
        )
        step(len(chunk))
    created: dict[str, int] = {}
    if items:
        wanted = plan.create
        created = {code: id_ for id_, code in bulk.ids_after(products, before, ("id", "code")) if code in wanted}
        kind = int(StockChangeKind.LISTING_IMPORT)
        bulk.insert(
            StockHistory.__table__,
            ("product_id", "product_code", "change", "quantity_after", "kind", "user_id", "note", "created_at"),
            [(created[code], code, data["quantity"], data["quantity"], kind, user_id, note, now)
             for code, data in items if data["quantity"] > 0],
        )

    listings = Listing.__table__
    listings_before = bulk.max_id(listings)
    store_id = store.id
    json_text = bulk.json
    for start in range(0, len(plan.new), _WRITE_CHUNK):
        chunk = plan.new[start : start + _WRITE_CHUNK]
        rows = []
        for record, product_id, to_create in chunk:
            if to_create is not None:
                product_id = created[to_create]
            code = record.sell_code or record.code
            quantity = record.quantity
            rows.append((
                store_id, product_id, record.item_code, record.variant_code, code, record.title,
                json_text(record.attributes), record.sync_enabled, quantity, now if quantity is not None else None,
                False, (search_text(code, record.item_code, record.variant_code) + _tail(folded(record.title)))[:1100],
                now, now,
            ))
        bulk.insert(
            listings,
            ("store_id", "product_id", "item_code", "variant_code", "code", "title", "attributes", "sync_enabled",
             "mall_quantity", "mall_quantity_at", "drifted", "search_text", "created_at", "updated_at"),
            rows,
        )
        step(len(chunk))

    columns = ("product_id", "code", "title", "attributes", "mall_quantity", "search_text", "updated_at")
    for start in range(0, len(plan.changed), _WRITE_CHUNK):
        chunk = plan.changed[start : start + _WRITE_CHUNK]
        with_quantity, without_quantity = [], []
        for row in chunk:
            product_code = row.get("_product")
            values = (
                created[product_code] if product_code is not None else row["product_id"],
                row["code"], row["title"], bulk.json(row["attributes"]), row["mall_quantity"],
                search_text(row["code"], row["item_code"], row["variant_code"], row["title"])[:1100], now,
            )
            if row["_quantity_changed"]:
                with_quantity.append(values + (now, row["id"]))
            else:
                without_quantity.append(values + (row["id"],))
        bulk.update(listings, columns + ("mall_quantity_at",), "id", with_quantity)
        bulk.update(listings, columns, "id", without_quantity)
        step(len(chunk))

    scheduled = 0
    if store.auto_sync:
        new_ids = [
            id_ for id_, product_id in bulk.ids_after(listings, listings_before, ("id", "product_id"),
                                                       where=f"store_id = {int(store.id)}")
            if product_id is not None
        ]
        scheduled += scheduling.schedule_new(bulk, store, new_ids, now)
        # Existing listings that got a product: they may have an open entry, so the upsert of the rules.
        scheduled += scheduling.schedule(plan.relinked_ids, {store.id: store})
    if report is not None:
        report("write", total, total)
    return {
        "new": len(plan.new),
        "updated": len(plan.changed),
        "unchanged": plan.unchanged,
        "products_created": len(created),
        "linked_existing": plan.linked_existing,
        "unlinked": plan.unlinked,
        "not_pushed": plan.not_pushed,
        "scheduled": scheduled,
    }


def _tail(folded_title: str) -> str:
    return " " + folded_title if folded_title else ""


def job_options(job: ImportJob) -> dict[str, Any]:
    options = job.options or {}
    return {
        "forced_format": options.get("format") or None,
        "create_products": bool(options.get("create_products", True)),
        "items": options.get("items") or None,
        "first_items": options.get("first_items") or None,
    }


def preview_job(job: ImportJob) -> Optional[Analysis]:
    """Fill the job's preview (format, encoding, counts, first errors) and mark it previewed. The caller
    commits. A file that cannot be used at all leaves the job `failed` with the reason; returns None."""
    store = db.session.get(Store, job.store_id) if job.store_id else None
    if store is None:
        job.status = "failed"
        job.message = str(_l("The store no longer exists."))
        return None
    try:
        analysis = analyse(store, uploads.job_files(job), **job_options(job))
    except FileProblem as problem:
        job.status = "failed"
        job.message = str(problem.message)
        job.errors = [{"row": problem.row, "column": problem.column or "", "message": str(problem.message), "file": ""}]
        job.error_count = 1
        job.preview = {"unrecognised": True} if problem.unrecognised else {}
        return None
    job.format = analysis.format.name
    job.encoding = analysis.encoding
    job.preview = {
        "counts": analysis.counts,
        "samples": analysis.plan.samples,
        "skipped": analysis.problems.skipped_reasons,
        "format_label": str(analysis.format.label),
    }
    job.errors = [e.as_dict() for e in analysis.problems.errors[:ERRORS_ON_JOB]]
    job.error_count = analysis.problems.error_count
    job.total_rows = analysis.plan.rows
    job.done_rows = 0
    job.status = "previewed"
    job.message = None
    return analysis


def import_note(job: ImportJob) -> str:
    return f"販売取込 #{job.id} {job.filename}"[:500]


def run_job(job_id: int) -> ImportJob:
    """The background import: all rows in one transaction, or nothing (see lifecycle.run)."""

    def work(job: ImportJob, reporter) -> str:
        store = db.session.get(Store, job.store_id) if job.store_id else None
        if store is None:
            raise FileProblem(_l("The store no longer exists."))
        analysis = analyse(store, uploads.job_files(job), report=reporter, total=job.total_rows or 0, **job_options(job))
        if analysis.problems.error_count:
            lifecycle.refuse(job, analysis.problems)
        result = write(store, analysis.plan, note=import_note(job), user_id=job.user_id, report=reporter)
        job.result = result
        job.total_rows = job.done_rows = analysis.plan.rows
        return str(_l("Imported: %(new)s new, %(updated)s updated, %(unchanged)s unchanged listings; "
                      "%(created)s products created.", new=result["new"], updated=result["updated"],
                      unchanged=result["unchanged"], created=result["products_created"]))

    return lifecycle.run(job_id, work)
