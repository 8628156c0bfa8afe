"""受注取込: a mall's order CSV read into the store's orders, all or nothing.

The file is opened as 販売取込 opens its files (tatenpo.listings.reading: the same refusals of files that are
not a usable CSV, CP932 / UTF-8 with or without BOM), its format found from the header row, every row checked
first: one bad row and nothing is imported, the rows named. Then each order goes through the rule all order
doors share (tatenpo.orders.mall_orders.apply, source "csv"): an order the mail or the API brought already is
the same order, a status is applied once, and importing the same file again moves nothing.

The preview applies everything inside the transaction and rolls it back, so it says exactly what the import
will do (new orders, shipped, cancelled, lines linked, nothing). The screen's preview and import run in the
background (an order costs a few database round trips; a month's file is thousands of orders); the shell's
`orders import` runs them in its own process (`run`)."""
from __future__ import annotations

import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from tatenpo import malls
from tatenpo.listings.progress import Reporter
from tatenpo.listings.reading import ENCODING_LABELS, FileProblem, Table, open_table
from tatenpo.models import ImportJob, Order, OrderStatus, Store, utcnow
from tatenpo.orders import mall_orders
from tatenpo.orders.order_csv import amazon, rakuten, shopify, yahoo
from tatenpo.orders.order_csv.base import OrderFormat, Problem
from tatenpo.platform.extensions import db

FORMATS: list[OrderFormat] = [rakuten.FORMAT, yahoo.FORMAT, amazon.FORMAT, shopify.FORMAT]
BY_NAME = {f.name: f for f in FORMATS}
ZIP_MEMBERS = (".csv", ".txt", ".tsv")
SHOWN_ORDERS = 200  # the preview lists this many orders; the counts cover all


@dataclass
class Outcome:
    format: str = ""
    format_label: str = ""
    encoding: str = ""
    rows: int = 0
    applied: bool = False  # committed (not a preview, not refused)
    counts: dict[str, int] = field(default_factory=dict)  # new / shipped / cancelled / linked / seen / unchanged
    orders: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0

    @property
    def refused(self) -> bool:
        return self.problem_count > 0

    def as_dict(self) -> dict[str, Any]:
        return {"format": self.format, "format_label": self.format_label, "encoding": self.encoding,
                "rows": self.rows, "applied": self.applied, "refused": self.refused, "counts": self.counts,
                "orders": self.orders, "problems": [p.as_dict() for p in self.problems],
                "problem_count": self.problem_count}


ACTIONS = ("new", "shipped", "cancelled", "linked", "seen", "unchanged")
ACTION_LABELS = {
    "new": _l("New order"),
    "shipped": _l("Marked shipped"),
    "cancelled": _l("Cancelled"),
    "linked": _l("Lines linked"),
    "seen": _l("Known already (source noted)"),
    "unchanged": _l("No change"),
}


def expand(files: list[tuple[Path, str]]) -> list[tuple[Path, str]]:
    """The files to read: a zip (Yahoo's two order files come zipped) is opened and its CSVs taken out beside
    it; anything else as it is. Refuses a zip holding no CSV, and one that unpacks larger than `limit`."""
    from tatenpo.listings.uploads import size_limit

    found: list[tuple[Path, str]] = []
    for path, name in files:
        with path.open("rb") as raw:
            is_zip = raw.read(4) == b"PK\x03\x04"
        if not is_zip:
            found.append((path, name))
            continue
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            raise FileProblem(_l("“%(file)s” is a damaged zip file.", file=name)) from None
        with archive:
            members = [m for m in archive.infolist() if not m.is_dir() and m.filename.lower().endswith(ZIP_MEMBERS)]
            if not members:
                raise FileProblem(_l("The zip file “%(file)s” holds no CSV file.", file=name))
            if sum(m.file_size for m in members) > size_limit():
                raise FileProblem(_l("The zip file “%(file)s” unpacks larger than the upload limit.", file=name))
            folder = path.parent / f"{path.stem}-unzipped"
            folder.mkdir(exist_ok=True)
            for number, member in enumerate(members, start=1):
                target = folder / f"{number}{Path(member.filename).suffix.lower()}"
                with archive.open(member) as source, target.open("wb") as out:
                    shutil.copyfileobj(source, out)
                found.append((target, Path(member.filename).name))
    return found


def detect(tables: list[Table]) -> OrderFormat:
    columns = [t.columns for t in tables]
    for candidate in FORMATS:
        if candidate.matches(columns):
            return candidate
    if len(tables) > 1:
        raise FileProblem(_l("These files are not one mall's order files. Upload one order CSV (Yahoo: its orders "
                             "and items files together)."), row=1)
    table = tables[0]
    raise FileProblem(_l("“%(file)s” is not an order file we recognise (its first columns: %(headers)s). Upload the "
                         "order CSV downloaded from the mall.", file=table.filename,
                         headers=", ".join(table.headers[:5])), row=1, unrecognised=True)


def open_files(files: list[tuple[Path, str]]) -> list[Table]:
    if not files:
        raise FileProblem(_l("Choose a CSV file to upload."))
    return [open_table(path, name) for path, name in expand(files)]


def apply_files(store: Store, files: list[tuple[Path, str]], report: Optional[Reporter] = None) -> Outcome:
    """Read the files and apply their orders to `store` in the session, committing nothing (the caller commits,
    or rolls back for a preview). Nothing is applied when a row is wrong (`Outcome.refused`). Raises
    FileProblem for a file that is not this store's order CSV at all."""
    tables = open_files(files)
    chosen = detect(tables)
    family = malls.family_of(store.mall)
    if chosen.family != family:
        raise FileProblem(_l("This is %(format)s, but the store “%(store)s” is on %(mall)s. Choose the store the "
                             "file was downloaded from.", format=chosen.label, store=store.name,
                             mall=malls.family_name(family)), row=1)
    read = chosen.read(tables)
    outcome = Outcome(format=chosen.name, format_label=str(chosen.label),
                      encoding=ENCODING_LABELS.get(tables[0].encoding, tables[0].encoding), rows=read.rows,
                      problems=read.problems, problem_count=read.problem_count,
                      counts={action: 0 for action in ACTIONS})
    if outcome.refused:
        return outcome
    if not read.orders:
        raise FileProblem(_l("The file has no orders."))
    total = len(read.orders)
    for done, mall_order in enumerate(read.orders, start=1):
        action = _apply(store, mall_order)
        outcome.counts[action] += 1
        if len(outcome.orders) < SHOWN_ORDERS:
            outcome.orders.append({"number": mall_order.number, "status": mall_order.status.value,
                                   "mall_status": mall_order.mall_status, "lines": len(mall_order.lines),
                                   "action": action})
        if report is not None:
            report("orders", done, total)
    return outcome


def run(store: Store, files: list[tuple[Path, str]], *, commit: bool) -> Outcome:
    """`apply_files`, then commit (`commit`, and nothing was wrong) or roll back (the preview, a dry run)."""
    try:
        outcome = apply_files(store, files)
    except BaseException:
        db.session.rollback()
        raise
    if commit and not outcome.refused:
        db.session.commit()
        outcome.applied = True
    else:
        db.session.rollback()
    return outcome


def _apply(store: Store, mall_order: mall_orders.MallOrder) -> str:
    before = _state(store.id, mall_order.number)
    applied = mall_orders.apply(store, mall_order, source="csv")
    db.session.flush()
    if applied.created:
        return "new"
    after = _state(store.id, mall_order.number)
    if before is not None and after is not None:
        if before[0] != after[0] and after[0] in (OrderStatus.SHIPPED.value, OrderStatus.CANCELLED.value):
            return after[0]
        if after[1] > before[1]:
            return "linked"
    return "seen" if applied.changed else "unchanged"


def _state(store_id: int, number: str) -> Optional[tuple[str, int]]:
    """(status, linked lines) of the store's order with this number, or None."""
    order = db.session.scalar(select(Order).where(Order.store_id == store_id, Order.number == number))
    if order is None:
        return None
    return order.status, sum(1 for line in order.lines if line.listing_id is not None)


# The 受注取込 screen's upload, in the background like 販売取込's (tatenpo.listings.lifecycle: the preview fills the
# job, the shop confirms, the import runs in one transaction): jobs.preview_order_import, jobs.run_order_import.

KIND = "orders"  # ImportJob.kind


def preview_work(job: ImportJob, report: Reporter) -> None:
    """The preview: apply everything, keep what it did on the job, roll it back. A file that cannot be used
    fails the job with the reason; the caller commits."""
    from tatenpo.listings.uploads import job_files

    store = db.session.get(Store, job.store_id) if job.store_id else None
    try:
        if store is None:
            raise FileProblem(_l("The store of this upload no longer exists."))
        outcome = apply_files(store, job_files(job), report)
    except FileProblem as problem:
        db.session.rollback()
        _failed(job, problem)
        return
    db.session.rollback()  # a preview changes nothing
    _keep(job, outcome)
    job.status = "failed" if outcome.refused else "previewed"


def import_work(job: ImportJob, report: Reporter) -> str:
    """The import confirmed on the preview: every order applied in the caller's transaction (committed by
    tatenpo.listings.lifecycle.run, or rolled back with the job failed). Returns the message for the page."""
    from tatenpo.listings import lifecycle
    from tatenpo.listings.uploads import job_files

    store = db.session.get(Store, job.store_id) if job.store_id else None
    if store is None:
        raise FileProblem(_l("The store of this upload no longer exists."))
    outcome = apply_files(store, job_files(job), report)
    _keep(job, outcome)
    if outcome.refused:
        raise lifecycle.RowsRefused(str(_l("%(count)s rows have errors; nothing was imported.",
                                           count=outcome.problem_count)))
    job.result = outcome.counts
    job.done_rows = outcome.rows
    return str(_l("%(count)s orders were imported.", count=sum(outcome.counts.values())))


def _keep(job: ImportJob, outcome: Outcome) -> None:
    job.format = outcome.format
    job.encoding = outcome.encoding[:20]
    job.total_rows = outcome.rows
    data = outcome.as_dict()
    data.pop("problems")
    job.preview = data
    job.errors = [p.as_dict() for p in outcome.problems]
    job.error_count = outcome.problem_count
    job.message = None


def _failed(job: ImportJob, problem: FileProblem) -> None:
    job.status = "failed"
    job.finished_at = utcnow()
    job.message = str(problem.message)
    job.errors = [{"message": str(problem.message), "row": problem.row, "column": problem.column or "", "file": ""}]
    job.error_count = 1
