"""在庫出力 / 在庫取込: the products' stock as a CSV for Excel, and a CSV of (商品コード, 在庫数) to set stock in bulk.

Export: 商品コード, 商品名, 在庫数, 引当数, 販売可能数 in CP932 (what Excel opens in Japan) or UTF-8 with BOM.
Cells starting with = + - @ are prefixed with ' so Excel shows them as text instead of running a formula;
the import removes that prefix again, so export → import changes nothing.

Import: preview (read by the worker, see listings.lifecycle.preview), then every changed product in one
transaction through inventory.set_stock_many (kind STOCK_CSV), so history and the sync schedule follow; any
bad row, unknown code or duplicate writes nothing. A row with more cells than the header (an unquoted 1,500)
is a bad row; the upload of a file refused whole is removed at once.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from tatenpo.listings import lifecycle, progress, uploads
from tatenpo.listings.reading import ENCODING_LABELS, FileProblem, cell, follow_reading, open_table
from tatenpo.listings.records import ERRORS_ON_JOB, Problems
from tatenpo.models import ImportJob, Product, StockChangeKind
from tatenpo.platform.extensions import db
from tatenpo.stock import inventory

HEADERS = ["商品コード", "商品名", "在庫数", "引当数", "販売可能数"]
CODE_COLUMN = ("商品コード", "product code", "code")
QUANTITY_COLUMN = ("在庫数", "on hand", "stock")
ENCODINGS = ("cp932", "utf-8-sig")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_CHUNK = 900


def neutralise(text: str) -> str:
    """A cell Excel would run as a formula (=, +, -, @) is shown as text instead."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def restore(text: str) -> str:
    """Undo `neutralise` on import."""
    return text[1:] if text.startswith("'") and text[1:2] in _FORMULA_START and len(text) > 1 else text


def export_csv(encoding: str = "cp932") -> bytes:
    """Every product's stock, ordered by 商品コード. Characters CP932 cannot hold in a name become '?';
    a 商品コード that CP932 cannot hold stops the export (the import could not find the product again)."""
    if encoding not in ENCODINGS:
        raise FileProblem(_l("Unknown encoding “%(encoding)s”.", encoding=encoding))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADERS)
    rows = db.session.execute(
        select(Product.code, Product.name, Product.on_hand, Product.allocated, inventory.product_sellable_sql())
        .order_by(Product.code)
    ).yield_per(2000)
    for code, name, on_hand, allocated, sellable in rows:  # a set's 販売可能数 is its parts' (在庫数 0)
        if encoding == "cp932":
            try:
                code.encode("cp932")
            except UnicodeEncodeError:
                raise FileProblem(
                    _l("The 商品コード “%(code)s” has characters Shift_JIS cannot hold: export as UTF-8.", code=code)
                ) from None
            name = name.encode("cp932", errors="replace").decode("cp932")
        writer.writerow([neutralise(code), neutralise(name or ""), on_hand, allocated, sellable])
    return buffer.getvalue().encode(encoding)


@dataclass
class StockPlan:
    changes: list[tuple[int, str, int, int]] = field(default_factory=list)  # (product id, code, before, after)
    unchanged: int = 0
    rows: int = 0
    problems: Problems = field(default_factory=Problems)
    encoding: str = ""
    samples: list[dict] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "changed": len(self.changes),
            "unchanged": self.unchanged,
            "errors": self.problems.error_count,
        }


def plan_import(path, filename: str, report=None) -> StockPlan:
    """Read a stock CSV and compare it with the current stock; raises FileProblem for an unusable file.
    `report(stage, done, total)` follows the reading (the background preview's progress bar)."""
    table = open_table(path, filename)
    if report is not None:
        follow_reading([table], lambda done, total: report(progress.PREVIEW, done, total))
    code_at = table.columns.require(*CODE_COLUMN)
    quantity_at = table.columns.require(*QUANTITY_COLUMN)
    code_column, quantity_column = table.columns.name(code_at), table.columns.name(quantity_at)
    plan = StockPlan(encoding=ENCODING_LABELS.get(table.encoding, table.encoding))
    problems = plan.problems
    wanted: dict[str, tuple[int, int]] = {}  # code → (row, quantity)
    width = len(table.headers)
    for row_no, row in table.rows():
        plan.rows += 1
        if len(row) > width and any(c.strip() for c in row[width:]):
            # An unquoted "1,500" splits into two cells: reading the first alone would set 1 without a word.
            problems.add(
                row_no, "",
                _l("Row %(row)s has %(cells)s cells but the header has %(columns)s columns. Quote a number "
                   "with commas (\"1,500\") or remove them.", row=row_no, cells=len(row), columns=width),
                filename,
            )
            continue
        code = restore(cell(row, code_at).strip())
        if not code:
            problems.add(row_no, code_column, _l("商品コード is empty."), filename)
            continue
        text = cell(row, quantity_at)
        if text.strip() == "":
            problems.add(row_no, quantity_column, _l("在庫数 is empty."), filename)
            continue
        quantity = _quantity(text, row_no, quantity_column, problems, filename)
        if quantity is None:
            continue
        if code in wanted:
            problems.add(
                row_no, code_column,
                _l("商品コード “%(code)s” appears twice: rows %(first)s and %(row)s.", code=code,
                   first=wanted[code][0], row=row_no),
                filename,
            )
            continue
        wanted[code] = (row_no, quantity)
    if plan.rows == 0:
        raise FileProblem(_l("The file has a header row but no products."), row=2)
    codes = list(wanted)
    current: dict[str, tuple[int, int]] = {}
    sets: set[str] = set()
    for start in range(0, len(codes), _CHUNK):
        chunk = codes[start : start + _CHUNK]
        for id_, code, on_hand, is_set in db.session.execute(
            select(Product.id, Product.code, Product.on_hand, Product.is_set).where(Product.code.in_(chunk))
        ):
            current[code] = (id_, on_hand)
            if is_set:
                sets.add(code)
    for code, (row_no, quantity) in wanted.items():
        if code not in current:
            problems.add(row_no, code_column, _l("There is no product with 商品コード “%(code)s”.", code=code), filename)
            continue
        product_id, on_hand = current[code]
        if on_hand == quantity:
            plan.unchanged += 1  # an exported set's row (在庫数 0) comes back unchanged
            continue
        if code in sets:
            problems.add(row_no, quantity_column, inventory.SetHasNoStock(code).message, filename)
            continue
        plan.changes.append((product_id, code, on_hand, quantity))
        if len(plan.samples) < 20:
            plan.samples.append({"row": row_no, "code": code, "before": on_hand, "after": quantity})
    return plan


def _quantity(text: str, row_no: int, column: str, problems: Problems, filename: str) -> int | None:
    """在庫数 of a row, or None with the row's error added: inventory.parse_quantity's rules, 0…MAX_QUANTITY."""
    try:
        value = inventory.parse_quantity(text)
    except inventory.StockError as exc:
        problems.add(row_no, column, exc.message, filename)
        return None
    if value < 0:
        problems.add(row_no, column, _l("Stock cannot be negative (%(value)s).", value=text.strip()), filename)
        return None
    if value > inventory.MAX_QUANTITY:
        problems.add(row_no, column, _l("Stock cannot exceed %(max)s.", max=f"{inventory.MAX_QUANTITY:,}"), filename)
        return None
    return value


def apply_plan(plan: StockPlan, *, user=None, note: str = "", report=None) -> int:
    """Set every changed product's stock in the caller's transaction; returns how many changed."""
    targets = {product_id: after for product_id, _code, _before, after in plan.changes}
    changed = inventory.set_stock_many(
        targets, kind=StockChangeKind.STOCK_CSV, user=user, note=note,
        progress=(lambda done, total: report("write", done, total)) if report is not None else None,
    )
    return len(changed)


def preview_job(job: ImportJob, report=None) -> Optional[StockPlan]:
    """Fill the stock import job's preview; the caller commits. An unusable file marks the job failed.
    `report` follows the reading (see lifecycle.preview)."""
    try:
        (path, name), *_ = uploads.job_files(job)
        plan = plan_import(path, name, report)
    except FileProblem as problem:
        uploads.discard(job)  # a refused file is not kept
        job.status = "failed"
        job.message = str(problem.message)
        job.errors = [{"row": problem.row, "column": problem.column or "", "message": str(problem.message), "file": ""}]
        job.error_count = 1
        return None
    except BaseException:
        uploads.discard(job)
        raise
    job.format = "stock"
    job.encoding = plan.encoding
    job.preview = {"counts": plan.counts(), "samples": plan.samples}
    job.errors = [e.as_dict() for e in plan.problems.errors[:ERRORS_ON_JOB]]
    job.error_count = plan.problems.error_count
    job.total_rows = plan.rows
    job.status = "previewed"
    job.message = None
    return plan


def run_job(job_id: int) -> ImportJob:
    """The background 在庫取込: all changes in one transaction, or none (see listings.lifecycle.run)."""

    def work(job: ImportJob, reporter) -> str:
        (path, name), *_ = uploads.job_files(job)
        plan = plan_import(path, name)
        if plan.problems.error_count:
            lifecycle.refuse(job, plan.problems)
        changed = apply_plan(plan, user=job.user, note=f"在庫取込 #{job.id} {job.filename}"[:500], report=reporter)
        job.result = {"changed": changed, "unchanged": plan.unchanged, "rows": plan.rows}
        job.done_rows = job.total_rows = plan.rows
        return str(_l("Stock set for %(changed)s products (%(unchanged)s unchanged).",
                      changed=changed, unchanged=plan.unchanged))

    return lifecycle.run(job_id, work, expected=(inventory.StockError,))
