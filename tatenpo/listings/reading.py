"""Reading a CSV as the shop downloaded it: the encoding (CP932, UTF-8 with or without BOM), the delimiter,
any line ending (CRLF, LF, bare CR from old spreadsheets), quoted commas and newlines, and columns found by
header name in any order. Anything that is not a readable table stops with a message naming the row.

Rows are streamed, never loaded whole, so a 100 MB file costs little memory.
"""
from __future__ import annotations

import codecs
import csv
import io
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from flask_babel import lazy_gettext as _l

# How often (in rows) Table.rows tells on_progress how far it has read.
_PROGRESS_ROWS = 2000

# Long product descriptions (HTML) easily pass csv's default 128 KB per field.
csv.field_size_limit(32 * 1024 * 1024)

ENCODING_LABELS = {
    "cp932": "Shift_JIS (CP932)",
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 (BOM)",
    "utf-16": "UTF-16",
}

# Files people upload by mistake, by their first bytes: say what they are instead of "cannot read".
_SIGNATURES = [
    (b"PK\x03\x04", _l("This is an Excel (.xlsx) or ZIP file, not a CSV. Save it as CSV and upload again.")),
    (b"\xd0\xcf\x11\xe0", _l("This is an old Excel (.xls) file, not a CSV. Save it as CSV and upload again.")),
    (b"%PDF", _l("This is a PDF file, not a CSV.")),
    (b"\x89PNG", _l("This is an image file, not a CSV.")),
    (b"\xff\xd8\xff", _l("This is an image file, not a CSV.")),
    (b"GIF8", _l("This is an image file, not a CSV.")),
    (b"\x1f\x8b", _l("This is a compressed (gzip) file. Unpack it and upload the CSV inside.")),
]


class FileProblem(ValueError):
    """The file as a whole cannot be used; nothing is written. `row`/`column` say where, when known."""

    def __init__(self, message, row: Optional[int] = None, column: Optional[str] = None,
                 unrecognised: bool = False) -> None:
        super().__init__(str(message))
        self.message = message
        self.row = row
        self.column = column
        # No format matched: the shop may map the columns itself (the generic format).
        self.unrecognised = unrecognised

    def __str__(self) -> str:
        return str(self.message)


def header_key(name: str) -> str:
    """How headers are compared: width, case, spaces and the BOM do not matter (（商品URL） = (商品URL))."""
    text = unicodedata.normalize("NFKC", name).replace("\ufeff", "").casefold()
    return "".join(text.split())


@dataclass
class Columns:
    """Column positions by header name. `find` takes aliases and returns the first present."""

    headers: list[str]
    _index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for position, name in enumerate(self.headers):
            self._index.setdefault(header_key(name), position)

    def find(self, *names: str) -> Optional[int]:
        for name in names:
            position = self._index.get(header_key(name))
            if position is not None:
                return position
        return None

    def has(self, *names: str) -> bool:
        return self.find(*names) is not None

    def has_all(self, *names: str) -> bool:
        return all(self.find(name) is not None for name in names)

    def require(self, *names: str) -> int:
        position = self.find(*names)
        if position is None:
            raise FileProblem(
                _l("The column “%(column)s” is missing from the header row.", column=names[0]), row=1, column=names[0]
            )
        return position

    def at(self, *names: str) -> int:
        """Like find, but an absent column gives the index of the blank cell that `Table.rows(pad=True)`
        appends to every row, so hot loops can index rows directly."""
        position = self.find(*names)
        return len(self.headers) if position is None else position

    def name(self, position: Optional[int]) -> str:
        return self.headers[position] if position is not None and position < len(self.headers) else ""


def cell(row: list[str], position: Optional[int]) -> str:
    """A cell's text, '' when the column is absent or the row is short."""
    if position is None or position >= len(row):
        return ""
    return row[position]


@dataclass
class Table:
    """One CSV file: where it is, how it is encoded, its header row and its data rows (streamed)."""

    path: Path
    filename: str
    encoding: str
    delimiter: str
    headers: list[str]
    columns: Columns
    # Told how many bytes of the file have been read, every few thousand rows (the preview's progress bar).
    on_progress: Optional[Callable[[int], None]] = None

    def rows(self, pad: bool = False) -> Iterator[tuple[int, list[str]]]:
        """(row number, cells) for every non-empty data row; the header is row 1, as in Excel. With `pad`,
        short rows are filled up and one blank cell is appended (see Columns.at)."""
        width = len(self.headers) + 1
        on_progress = self.on_progress
        with self.path.open("rb") as raw:
            text = io.TextIOWrapper(raw, encoding=self.encoding, newline="")
            reader = csv.reader(text, delimiter=self.delimiter)
            number = 0
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except UnicodeDecodeError:
                    raise _undecodable(self.path, self.encoding) from None
                except csv.Error as exc:
                    raise FileProblem(
                        _l("Row %(row)s cannot be read as CSV (%(reason)s).", row=number + 1, reason=str(exc)),
                        row=number + 1,
                    ) from None
                number += 1
                if number == 1:
                    continue  # the header
                if on_progress is not None and number % _PROGRESS_ROWS == 0:
                    on_progress(raw.tell())
                if not any(row):
                    continue
                if pad:
                    row.extend([""] * (width - len(row)) if len(row) < width else ("",))
                yield number, row


def follow_reading(tables: list[Table], report: Callable[[int, int], None]) -> None:
    """Have `report(bytes read, bytes in all the files)` called as the tables' rows are read: a file's rows
    are not counted before they are read, its bytes are."""
    sizes = [table.path.stat().st_size for table in tables]
    total = sum(sizes)
    before = 0
    for table, size in zip(tables, sizes):
        table.on_progress = (lambda base: lambda done: report(base + done, total))(before)
        before += size


def _first_bad_line(path: Path, encoding: str) -> int:
    """The line (1-based) holding the first undecodable bytes. Only runs when decoding failed; CP932 and
    UTF-8 never use CR or LF inside a character, so the bytes can be split into lines first."""
    if encoding == "utf-16":
        return 1
    codec = "utf-8" if encoding.startswith("utf-8") else encoding
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            line.decode(codec)
        except UnicodeDecodeError:
            return number
    return 1


def _undecodable(path: Path, encoding: str) -> FileProblem:
    line = _first_bad_line(path, encoding)
    return FileProblem(
        _l(
            "Line %(row)s contains bytes that are not %(encoding)s text. Save the file again as CSV.",
            row=line,
            encoding=ENCODING_LABELS.get(encoding, encoding),
        ),
        row=line,
    )


def _check_not_binary(head: bytes) -> None:
    for signature, message in _SIGNATURES:
        if head.startswith(signature):
            raise FileProblem(message)
    if b"\x00" in head:
        raise FileProblem(_l("This is not a text file (it contains binary data). Upload the CSV downloaded from the mall."))


def detect_encoding(path: Path) -> str:
    """BOM → UTF-8 (BOM); valid UTF-8 throughout → UTF-8; otherwise CP932 (never strict Shift_JIS, which
    refuses ①, ㈱, 髙 and ～ that every Japanese mall's file contains)."""
    with path.open("rb") as raw:
        head = raw.read(4)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        raw.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            while chunk := raw.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp932"
    return "utf-8"


def open_table(path: Path | str, filename: Optional[str] = None, encoding: Optional[str] = None) -> Table:
    """Look at a file and return its Table, or raise FileProblem saying why it is not a usable CSV."""
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as raw:
        head = raw.read(8192)
    if size == 0 or not head.strip(b" \t\r\n\xef\xbb\xbf"):
        raise FileProblem(_l("The file is empty."))
    if not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        _check_not_binary(head)
    encoding = encoding or detect_encoding(path)
    try:
        with path.open("rb") as raw:
            text = io.TextIOWrapper(raw, encoding=encoding, newline="")
            first_line = text.readline()
    except UnicodeDecodeError:
        raise _undecodable(path, encoding) from None
    # Amazon's reports are tab-separated; everyone else uses commas.
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    table = Table(path, filename or path.name, encoding, delimiter, [], Columns([]))
    with path.open("rb") as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding=encoding, newline=""), delimiter=delimiter)
        try:
            headers = next(reader)
        except UnicodeDecodeError:
            raise _undecodable(path, encoding) from None
        except (StopIteration, csv.Error):
            raise FileProblem(_l("The header row cannot be read."), row=1) from None
    headers = [h.replace("\ufeff", "").strip() for h in headers]
    if not any(headers):
        raise FileProblem(_l("The first row must hold the column names, but it is empty."), row=1)
    table.headers = headers
    table.columns = Columns(headers)
    return table
