"""What every format reader produces: one Record per listing row, and RowErrors naming row and column."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from flask_babel import lazy_gettext as _l

from tatenpo.stock.inventory import MAX_QUANTITY, StockError, parse_quantity

# The optional columns shops append to the right of a mall's own columns to override linking.
PRODUCT_CODE_COLUMN = "system-product-code"  # 商品コード
SELL_CODE_COLUMN = "system-sell-code"  # 販売コード

# Errors kept in detail (for the preview and the error report); the count is always exact.
MAX_KEPT_ERRORS = 5000
# Errors stored on the ImportJob for the preview and the downloadable report.
ERRORS_ON_JOB = 1000


@dataclass(slots=True)
class Record:
    """One listing as the file describes it, identified the mall's way (see models.Listing)."""

    row: int
    item_code: str
    variant_code: str
    code: str  # the mall's SKU-level code (before system-*-code overrides)
    title: str
    quantity: Optional[int]  # the stock the mall showed; None when the file does not say
    attributes: dict[str, Any]
    product_code: str = ""  # from system-product-code
    sell_code: str = ""  # from system-sell-code
    sync_enabled: bool = True
    filename: str = ""
    # The file lacks the column the code would come from (a stock-only subset): keep a listing's code.
    keep_code: bool = False
    # `attributes` as JSON text, once worked out (linking.attributes_json).
    attributes_json: Optional[str] = None
    # The title folded for the search texts, once worked out by the import's writer (linking.folded_title);
    # not staged.
    folded_title: str | None = None


@dataclass
class RowError:
    row: Optional[int]
    column: str
    message: str
    filename: str = ""

    def as_dict(self) -> dict:
        return {"row": self.row, "column": self.column, "message": self.message, "file": self.filename}


@dataclass
class Problems:
    """Row errors (block the import) and skipped rows (ignored on purpose, with the reason)."""

    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    skipped: int = 0
    skipped_reasons: dict[str, int] = field(default_factory=dict)

    def add(self, row: Optional[int], column: str, message, filename: str = "") -> None:
        self.error_count += 1
        if len(self.errors) < MAX_KEPT_ERRORS:
            self.errors.append(RowError(row, column, str(message), filename))

    def skip(self, reason) -> None:
        self.skipped += 1
        key = str(reason)
        self.skipped_reasons[key] = self.skipped_reasons.get(key, 0) + 1


def read_quantity(text: str, row: int, column: str, problems: Problems, filename: str = "") -> Optional[int]:
    """A stock cell: empty → unknown (None); otherwise a whole number 0…MAX, or an error for this row."""
    if text == "" or text.isspace():
        return None
    if text.isdigit() and text.isascii() and len(text) <= 12:
        value = int(text)  # the common case, without the general parser's cost (which caps longer numbers)
    else:
        try:
            value = parse_quantity(text)
        except StockError as exc:
            problems.add(row, column, exc.message, filename)
            return None
    if value < 0:
        problems.add(row, column, _l("Stock cannot be negative (%(value)s).", value=text.strip()), filename)
        return None
    if value > MAX_QUANTITY:
        problems.add(row, column, _l("Stock cannot exceed %(max)s.", max=f"{MAX_QUANTITY:,}"), filename)
        return None
    return value
