"""What every order CSV reader shares: the format's shape, the problems found on rows, and the small cell
parsers (numbers as the malls print them, times in Japan time). The files themselves are read as 販売取込 reads
them (tatenpo.listings.reading: CP932 / UTF-8 with or without BOM, any line ending, columns by header name)."""
from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from flask_babel import lazy_gettext as _l

from tatenpo.listings.reading import Columns, Table
from tatenpo.orders.mall_orders import MallOrder, MallOrderLine

JST = timezone(timedelta(hours=9))
MAX_PROBLEMS = 500  # beyond this the file is plainly the wrong one; the count still says how many


@dataclass
class Problem:
    """Why a row cannot be imported: said to the shop by file, row and column, in their language."""

    message: Any
    row: Optional[int] = None
    column: str = ""
    file: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"message": str(self.message), "row": self.row, "column": self.column, "file": self.file}


@dataclass
class Read:
    """A file read: the orders in it (one per mall order number, in file order) and the rows' problems."""

    orders: list[MallOrder] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    rows: int = 0

    def problem(self, message, row: Optional[int] = None, column: str = "", file: str = "") -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(message, row, column, file))


@dataclass(frozen=True)
class OrderFormat:
    name: str  # stable id: the CLI's output, ImportJob.format
    label: Any  # shown to the shop
    family: str  # the mall family (tatenpo.malls) whose stores download this file
    matches: Callable[[list[Columns]], bool]  # the files' headers say it is this format
    read: Callable[[list[Table]], Read]
    multi_file: bool = False


class Lines:
    """One order's lines and order-level fields while its rows are read (rows of an order may be apart)."""

    def __init__(self, number: str, first_row: int) -> None:
        self.number = number
        self.first_row = first_row
        self.lines: list[MallOrderLine] = []
        self.fields: dict[str, str] = {}

    def keep(self, name: str, value: str) -> None:
        """An order-level field: the first non-empty value wins (Shopify prints them on the first row only)."""
        if value and not self.fields.get(name):
            self.fields[name] = value


def text(value: str) -> str:
    return (value or "").strip()


def quantity(value: str) -> Optional[int]:
    """A whole number ≥ 0 as the malls print it (full-width digits, thousands separators), else None."""
    folded = unicodedata.normalize("NFKC", value or "").strip().replace(",", "")
    if folded.endswith(".0"):
        folded = folded[:-2]
    return int(folded) if folded.isdigit() else None


def yen(value: str) -> Optional[int]:
    """A price in yen ('2,980', '2980.00', '￥2,980'), or None when it is not one."""
    folded = unicodedata.normalize("NFKC", value or "").strip().replace(",", "").lstrip("¥\\").strip()
    try:
        return int(float(folded)) if folded else None
    except ValueError:
        return None


TIME_FORMATS = ("%Y-%m-%d %H:%M:%S %z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S",
                "%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y%m%d%H%M%S", "%Y-%m-%d", "%Y/%m/%d")


def moment(value: str) -> Optional[datetime]:
    """A time as the files print it → naive UTC (the models' times). Without an offset it is Japan time."""
    raw = text(value).replace("Z", "+00:00")
    if not raw:
        return None
    for form in TIME_FORMATS:
        try:
            found = datetime.strptime(raw, form)
        except ValueError:
            continue
        if found.tzinfo is None:
            found = found.replace(tzinfo=JST)
        return found.astimezone(timezone.utc).replace(tzinfo=None)
    try:
        found = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if found.tzinfo is None:
        found = found.replace(tzinfo=JST)
    return found.astimezone(timezone.utc).replace(tzinfo=None)


def need(problems: Read, table: Table, *names: str) -> Optional[int]:
    """The column's position, or a problem on the header row naming it."""
    position = table.columns.find(*names)
    if position is None:
        problems.problem(_l("The column “%(column)s” is missing from the header row.", column=names[0]), row=1,
                         column=names[0], file=table.filename)
    return position


def bad_quantity(read: Read, table: Table, row: int, column: str, value: str) -> None:
    read.problem(_l("The quantity “%(value)s” is not a whole number of at least 1.", value=value), row=row,
                 column=column, file=table.filename)


def no_number(read: Read, table: Table, row: int, column: str) -> None:
    read.problem(_l("The order number is empty."), row=row, column=column, file=table.filename)
