"""セット商品CSV: every set's parts out as a CSV, and a CSV of parts in to make or change sets, beside 在庫CSV.

One row per part: セット商品コード, 構成商品コード, 数量 (how many of the part one set takes). CP932 (what Excel
opens in Japan) or UTF-8 (with or without BOM) on the way in, either on the way out. Cells Excel would run as a
formula are neutralised as in 在庫CSV (stock_csv.neutralise / restore).

Import: the rows of one set code together are the set's whole new list of parts (a set in the file has its parts
replaced; sets not in the file stay as they are). Everything is checked first — unknown codes, a set inside a
set, a quantity that is not a whole number ≥ 1, a part twice, a product with stock of its own or with open
orders — and any bad row refuses the whole file with its row number: all or nothing. A product with 在庫数 of
its own is refused here rather than cleared: a file cannot answer the question the product page asks.
"""
from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from tatenpo.listings.reading import ENCODING_LABELS, FileProblem, cell, open_table
from tatenpo.listings.records import Problems
from tatenpo.models import Product, SetPart, User
from tatenpo.platform.extensions import db
from tatenpo.stock import sets
from tatenpo.stock.stock_csv import ENCODINGS, neutralise, restore

HEADERS = ["セット商品コード", "構成商品コード", "数量"]
SET_COLUMN = ("セット商品コード", "set product code", "set code")
PART_COLUMN = ("構成商品コード", "part product code", "part code")
QUANTITY_COLUMN = ("数量", "quantity")


def export_csv(encoding: str = "cp932") -> bytes:
    """Every set's parts, by set code then the parts' order."""
    if encoding not in ENCODINGS:
        raise FileProblem(_l("Unknown encoding “%(encoding)s”.", encoding=encoding))
    part = Product.__table__.alias("part")
    rows = db.session.execute(
        select(Product.code, part.c.code, SetPart.quantity)
        .join(SetPart, SetPart.set_id == Product.id)
        .join(part, part.c.id == SetPart.part_id)
        .order_by(Product.code, SetPart.id)
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADERS)
    for set_code, part_code, quantity in rows:
        if encoding == "cp932":
            for code in (set_code, part_code):
                try:
                    code.encode("cp932")
                except UnicodeEncodeError:
                    raise FileProblem(_l("The 商品コード “%(code)s” has characters Shift_JIS cannot hold: export "
                                         "as UTF-8.", code=code)) from None
        writer.writerow([neutralise(set_code), neutralise(part_code), quantity])
    return buffer.getvalue().encode(encoding)


@dataclass
class SetPlan:
    """What a セット商品CSV would do: each set's checked definition (by code), and the rows' problems."""

    definitions: dict[str, sets.SetDefinition] = field(default_factory=dict)
    rows: int = 0
    problems: Problems = field(default_factory=Problems)
    encoding: str = ""
    samples: list[dict] = field(default_factory=list)  # per set: code, new parts, old parts, new or changed

    @property
    def ok(self) -> bool:
        return not self.problems.error_count

    def counts(self) -> dict[str, int]:
        return {"rows": self.rows, "sets": len(self.definitions), "errors": self.problems.error_count,
                "new": sum(1 for s in self.samples if s["new"]),
                "changed": sum(1 for s in self.samples if not s["new"] and s["changed"])}


def plan_import(path: Path | str, filename: str) -> SetPlan:
    """Read and check a セット商品CSV; raises FileProblem for a file that is no such CSV at all."""
    table = open_table(path, filename)
    set_at = table.columns.require(*SET_COLUMN)
    part_at = table.columns.require(*PART_COLUMN)
    quantity_at = table.columns.require(*QUANTITY_COLUMN)
    names = {at: table.columns.name(at) for at in (set_at, part_at, quantity_at)}
    plan = SetPlan(encoding=ENCODING_LABELS.get(table.encoding, table.encoding))
    problems = plan.problems
    width = len(table.headers)
    wanted: dict[str, list[tuple[int, str, str]]] = defaultdict(list)  # set code → [(row, part code, quantity)]
    for row_no, row in table.rows():
        plan.rows += 1
        if len(row) > width and any(c.strip() for c in row[width:]):
            problems.add(row_no, "", _l("Row %(row)s has %(cells)s cells but the header has %(columns)s columns.",
                                        row=row_no, cells=len(row), columns=width), filename)
            continue
        set_code = restore(cell(row, set_at).strip())
        part_code = restore(cell(row, part_at).strip())
        if not set_code:
            problems.add(row_no, names[set_at], _l("セット商品コード is empty."), filename)
            continue
        if not part_code:
            problems.add(row_no, names[part_at], _l("構成商品コード is empty."), filename)
            continue
        quantity = cell(row, quantity_at)
        try:
            sets.parse_part_quantity(quantity)
        except sets.SetError as exc:
            problems.add(row_no, names[quantity_at], exc.message, filename)
            continue
        wanted[set_code].append((row_no, part_code, quantity))
    if plan.rows == 0:
        raise FileProblem(_l("The file has a header row but no sets."), row=2)
    current = _current_parts(list(wanted))
    for set_code, lines in wanted.items():
        first_row = lines[0][0]
        try:
            definition = sets.check(set_code, [(code, quantity) for _row, code, quantity in lines],
                                    becoming_sets=wanted)
        except sets.SetError as exc:
            problems.add(_row_of(exc, lines), "", exc.message, filename)
            continue
        product = db.session.get(Product, definition.set_id)
        if product.on_hand and not product.is_set:
            problems.add(first_row, names[set_at], _l(
                "%(code)s has %(n)s in stock of its own. A set holds no stock: set its stock to 0 first, or make it "
                "a set on its product page.", code=set_code, n=f"{product.on_hand:,}"), filename)
            continue
        plan.definitions[set_code] = definition
        new_parts = [(code, int(sets.parse_part_quantity(q))) for _row, code, q in lines]
        old_parts = current.get(set_code)
        plan.samples.append({"row": first_row, "code": set_code, "parts": new_parts, "before": old_parts or [],
                             "new": old_parts is None, "changed": old_parts != new_parts})
    plan.samples.sort(key=lambda s: s["row"])
    return plan


def _row_of(error: sets.SetError, lines: list[tuple[int, str, str]]) -> int:
    """The row a set's problem is about: the row of the part it names (the last, for a part given twice), else
    the set's first row."""
    rows = [row_no for row_no, code, _quantity in lines if code == error.code]
    return rows[-1] if rows else lines[0][0]


def _current_parts(codes: list[str]) -> dict[str, list[tuple[str, int]]]:
    """The parts the sets among `codes` have now (code → [(part code, quantity)])."""
    part = Product.__table__.alias("part")
    found: dict[str, list[tuple[str, int]]] = {}
    for start in range(0, len(codes), 900):
        for set_code, part_code, quantity in db.session.execute(
            select(Product.code, part.c.code, SetPart.quantity)
            .join(SetPart, SetPart.set_id == Product.id).join(part, part.c.id == SetPart.part_id)
            .where(Product.code.in_(codes[start : start + 900]), Product.is_set.is_(True))
            .order_by(Product.code, SetPart.id)
        ):
            found.setdefault(set_code, []).append((part_code, quantity))
    return found


def apply_plan(plan: SetPlan, *, user: Optional[User] = None) -> int:
    """Write every set of a plan without problems, in the caller's transaction; returns how many sets."""
    if not plan.ok:
        raise sets.SetError(_l("The file has errors: nothing was saved."))
    return sets.write_many(plan.definitions, user=user)
