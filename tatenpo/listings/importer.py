"""販売取込: read the uploaded file(s), preview what would change, and import it all in one transaction.

Preview and import run the same code (`analyse`), so what the shop confirmed is what happens; the import
takes the records the preview read (see staging) rather than reading the file again. The import writes
nothing unless every row is valid; re-importing the same file changes nothing. New products get the
file's stock as their starting stock, with a 在庫履歴 row of kind LISTING_IMPORT; newly linked listings of a
store with 自動在庫同期 on are put on the sync schedule through tatenpo.stock.inventory.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import ARRAY, DateTime, Integer, Text, and_, any_, bindparam, cast, insert, literal, select

from tatenpo.listings import detect, lifecycle, progress, scheduling, staging, uploads
from tatenpo.listings.base import Format
from tatenpo.listings.bulk import BulkWriter, cycle_collection_paused
from tatenpo.listings.linking import (
    Plan,
    attributes_json,
    build_plan,
    listing_search_text,
    product_search_text,
    select_subset,
)
from tatenpo.listings.reading import ENCODING_LABELS, FileProblem, Table, follow_reading, open_table
from tatenpo.listings.records import ERRORS_ON_JOB, Problems, Record
from tatenpo.models import ImportJob, Listing, Product, StockChangeKind, StockHistory, Store, search_key, utcnow
from tatenpo.platform.extensions import db

Progress = Optional[Callable[[str, int, int], None]]
_WRITE_CHUNK = 2000


@dataclass
class Analysis:
    format: Format
    encoding: str
    plan: Plan
    problems: Problems
    records: list[Record] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, Any]:
        counts = self.plan.counts()
        counts["errors"] = self.problems.error_count
        counts["skipped"] = self.problems.skipped
        return counts


def open_tables(files: list[tuple[Any, str]], report: Progress = None) -> list[Table]:
    """The files as Tables; with `report`, their reading is reported as ("preview", bytes read, bytes)."""
    if not files:
        raise FileProblem(_l("Choose a CSV file to upload."))
    tables = [open_table(path, name) for path, name in files]
    if report is not None:
        follow_reading(tables, lambda done, total: report(progress.PREVIEW, done, total))
    return tables


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
    staged: Optional[staging.Staged] = None,
    read_report: Progress = None,
) -> Analysis:
    """Everything the import would do, without writing. Raises FileProblem for a file that cannot be used.
    With `staged` (the preview's records of the same files) the files are not read again. `read_report`
    follows the reading of the files (the preview's progress bar), `report` the plan (the import's)."""
    problems = Problems()
    if staged is not None:
        chosen = detect.get(staged.format)
        _check_mall(chosen, store)
        records = staged.records
        encoding = staged.encoding
        for reason, count in staged.skipped_reasons.items():
            problems.skipped += count
            problems.skipped_reasons[reason] = count
    else:
        tables = open_tables(files, read_report)
        chosen = detect.detect(tables, store.settings or {}, forced_format)
        _check_mall(chosen, store)
        records = list(select_subset(chosen.read(tables, problems, store.settings or {}), items, first_items))
        encoding = ENCODING_LABELS.get(tables[0].encoding, tables[0].encoding)
    plan = build_plan(store.id, records, problems, create_products=create_products, progress=report, total=total,
                      checked=staged is not None)
    if plan.rows == 0 and problems.error_count == 0 and problems.skipped == 0:
        raise FileProblem(_l("The file has a header row but no listings."), row=2)
    return Analysis(chosen, encoding, plan, problems, records)


def _check_mall(chosen: Format, store: Store) -> None:
    if store.mall not in chosen.malls:
        raise FileProblem(
            _l("This is a %(format)s file, but the store “%(store)s” is on another mall.",
               format=chosen.label, store=store.name)
        )


def write(store: Store, plan: Plan, *, note: str, user_id: Optional[int], report: Progress = None) -> dict[str, int]:
    """Apply a plan in the caller's transaction (bulk statements, no ORM object per row); returns counts."""
    bulk = BulkWriter()
    moment = utcnow()
    now = bulk.time(moment)
    stamps = {"created_at": moment, "updated_at": moment}
    total = len(plan.create) + len(plan.new) + plan.updated
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if report is not None:
            report("write", done, total)

    titles: dict[str, str] = {}  # folded titles, shared by a product's SKUs (see linking.fold_title)

    def counted(rows: Iterator[tuple]) -> Iterator[tuple]:
        # The rows stream into one statement (COPY on PostgreSQL keeps the server busy while Python builds
        # the next rows); progress is reported as they pass.
        n = 0
        for n, row in enumerate(rows, start=1):
            if n % _WRITE_CHUNK == 0:
                step(_WRITE_CHUNK)
            yield row
        step(n % _WRITE_CHUNK)

    products = Product.__table__
    before = bulk.max_id(products)
    items = list(plan.create.items())
    bulk.insert(
        products,
        ("code", "name", "on_hand", "search_text"),
        counted((code, record.title, record.quantity or 0, product_search_text(record, titles))
                for code, record in items),
        {"allocated": 0, "stock_managed": True, "version": 0, **stamps},
    )
    created: dict[str, int] = {}
    if items:
        wanted = plan.create
        created = {code: id_ for id_, code in bulk.ids_after(products, before, ("id", "code")) if code in wanted}
        _book_starting_stock(bulk, before, list(created.values()), note=note, user_id=user_id, moment=moment)

    def new_listings() -> Iterator[tuple]:
        for record, product_id, to_create in plan.new:
            quantity = record.quantity
            yield (
                created[to_create] if to_create is not None else product_id, record.item_code, record.variant_code,
                record.sell_code or record.code, record.title, attributes_json(record), record.sync_enabled,
                quantity, now if quantity is not None else None, listing_search_text(record, titles),
            )

    listings = Listing.__table__
    listings_before = bulk.max_id(listings)
    bulk.insert(
        listings,
        ("product_id", "item_code", "variant_code", "code", "title", "attributes", "sync_enabled",
         "mall_quantity", "mall_quantity_at", "search_text"),
        counted(new_listings()),
        {"store_id": store.id, "drifted": False, **stamps},
    )

    columns = ("product_id", "code", "title", "attributes", "mall_quantity", "search_text", "updated_at")
    with_quantity, without_quantity = [], []
    for row in plan.changed:
        product_code = row.get("_product")
        values = (
            created[product_code] if product_code is not None else row["product_id"],
            row["code"], row["title"], bulk.json(row["attributes"]), row["mall_quantity"],
            search_key(row["code"], row["item_code"], row["variant_code"], row["title"])[:1100], now,
        )
        if row["_quantity_changed"]:
            with_quantity.append(values + (now, row["id"]))
        else:
            without_quantity.append(values + (row["id"],))
    for changed_columns, rows in ((columns + ("mall_quantity_at",), with_quantity), (columns, without_quantity)):
        if rows:
            bulk.update(listings, changed_columns, "id", counted(iter(rows)))
    if plan.restocked:
        # The column that changed only: the search text and the code indexes stay as they are.
        bulk.update(listings, ("mall_quantity",), "id", counted(iter(plan.restocked)),
                    {"mall_quantity_at": moment, "updated_at": moment})

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
        "updated": plan.updated,
        "unchanged": plan.unchanged,
        "products_created": len(created),
        "linked_existing": plan.linked_existing,
        "unlinked": plan.unlinked,
        "not_pushed": plan.not_pushed,
        "scheduled": scheduled,
    }


def _book_starting_stock(bulk: BulkWriter, before: int, created: list[int], *, note: str, user_id: int | None,
                         moment: datetime) -> None:
    """A 在庫履歴 row (LISTING_IMPORT) for each product just created with stock, copied from the products by
    the database (one statement, no row through Python), in the products' order. The products are the ones
    above `before`; on PostgreSQL, where another transaction may have added products meanwhile, only those of
    `created`."""
    ours = Product.id > before
    if bulk.postgresql:
        ours = and_(ours, Product.id == any_(cast(bindparam("created", created), ARRAY(Integer))))
    db.session.execute(insert(StockHistory).from_select(
        ["product_id", "product_code", "change", "quantity_after", "kind", "user_id", "note", "created_at"],
        select(Product.id, Product.code, Product.on_hand, Product.on_hand, literal(int(StockChangeKind.LISTING_IMPORT)),
               literal(user_id, Integer), literal(note, Text), literal(moment, DateTime))
        .where(ours, Product.on_hand > 0).order_by(Product.id),
    ))


def job_options(job: ImportJob) -> dict[str, Any]:
    options = job.options or {}
    return {
        "forced_format": options.get("format") or None,
        "create_products": bool(options.get("create_products", True)),
        "items": options.get("items") or None,
        "first_items": options.get("first_items") or None,
    }


def _reading(options: dict[str, Any]) -> dict[str, Any]:
    """The options that decide which records are read from the file (creating products is decided later)."""
    return {key: value for key, value in options.items() if key != "create_products"}


def preview_job(job: ImportJob, report: Progress = None) -> Optional[Analysis]:
    """Fill the job's preview (format, encoding, counts, first errors) and mark it previewed. The caller
    commits. A file that cannot be used at all leaves the job `failed` with the reason; returns None.
    `report` follows the reading (the background preview's progress bar, see lifecycle.preview)."""
    with cycle_collection_paused():
        return _preview(job, report)


def _preview(job: ImportJob, report: Progress) -> Optional[Analysis]:
    store = db.session.get(Store, job.store_id) if job.store_id else None
    if store is None:
        job.status = "failed"
        job.message = str(_l("The store no longer exists."))
        return None
    options = job_options(job)
    staging.discard(job)
    try:
        analysis = analyse(store, uploads.job_files(job), read_report=report, **options)
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
    if not analysis.problems.error_count:  # a file with errors is refused, never imported
        staging.keep(job, _reading(options), staging.Staged(
            analysis.format.name, analysis.encoding, analysis.records, analysis.problems.skipped_reasons))
    return analysis


def import_note(job: ImportJob) -> str:
    return f"販売取込 #{job.id} {job.filename}"[:500]


def run_job(job_id: int) -> ImportJob:
    """The background import: all rows in one transaction, or nothing (see lifecycle.run)."""

    def work(job: ImportJob, reporter) -> str:
        store = db.session.get(Store, job.store_id) if job.store_id else None
        if store is None:
            raise FileProblem(_l("The store no longer exists."))
        options = job_options(job)
        analysis = analyse(store, uploads.job_files(job), report=reporter, total=job.total_rows or 0,
                           staged=staging.load(job, _reading(options)), **options)
        if analysis.problems.error_count:
            lifecycle.refuse(job, analysis.problems)
        result = write(store, analysis.plan, note=import_note(job), user_id=job.user_id, report=reporter)
        job.result = result
        job.total_rows = job.done_rows = analysis.plan.rows
        return str(_l("Imported: %(new)s new, %(updated)s updated, %(unchanged)s unchanged listings; "
                      "%(created)s products created.", new=result["new"], updated=result["updated"],
                      unchanged=result["unchanged"], created=result["products_created"]))

    return lifecycle.run(job_id, work)
