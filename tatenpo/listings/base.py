"""The shape every mall file format shares: a name, which headers identify it, and a reader that turns its
rows into Records. Each format lives in its own module and registers a `FORMAT`."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tatenpo.listings.reading import Columns, Table, cell
from tatenpo.listings.records import PRODUCT_CODE_COLUMN, SELL_CODE_COLUMN, Problems, Record

Reader = Callable[[list[Table], Problems, dict[str, Any]], Iterator[Record]]


@dataclass(frozen=True)
class Format:
    name: str  # stable id: CLI --format, ImportJob.format
    label: Any  # lazy string shown to the shop
    malls: tuple[str, ...]  # the Store.mall keys (tatenpo.malls) this file comes from
    matches: Callable[[Columns, dict[str, Any]], bool]
    read: Reader
    multi_file: bool = False  # read several files together (Rakuten's item.csv + select.csv)


class Overrides:
    """The system-product-code / system-sell-code columns a shop may append to any mall's file."""

    def __init__(self, columns: Columns) -> None:
        self.product = columns.find(PRODUCT_CODE_COLUMN)
        self.sell = columns.find(SELL_CODE_COLUMN)
        self.any = self.product is not None or self.sell is not None

    def apply(self, record: Record, row: list[str]) -> Record:
        if self.any:
            record.product_code = cell(row, self.product).strip()
            record.sell_code = cell(row, self.sell).strip()
        return record


def blank(value: str) -> bool:
    """Placeholders real exports put in empty choice cells: '', a space, '<br>'."""
    text = value.strip()
    return text == "" or text.lower() in ("<br>", "<br/>", "<br />")

