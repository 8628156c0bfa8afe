"""Reading a CSV as the shop downloaded it: the encoding (CP932, UTF-8 with or without BOM), the delimiter,
any line ending (CRLF, LF, bare CR from old spreadsheets), quoted commas and newlines, and columns found by
header name in any order. Anything that is not a readable table stops with a message naming the row.

Rows are streamed, never loaded whole, so a 100 MB file costs little memory.

A reader that names the columns it reads (`Table.rows(columns=…)`) has only those cells decoded: the rest of
a mall's file (long HTML descriptions, image paths) is split into cells but never decoded, which is most of
the cost of reading it. See Table.rows.
"""
from __future__ import annotations

import codecs
import csv
import io
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NoReturn, Optional

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
# The encodings whose multibyte characters never contain the bytes CSV's structure is made of (", the
# delimiter, CR, LF): CP932's second bytes are 0x40–0x7E and 0x80–0xFC, UTF-8's are 0x80–0xBF. A file in one
# of them splits into the same cells read byte for byte (latin-1, which maps every byte to one character) as
# read decoded, so only the cells used need decoding. The codec that decodes a cell, by encoding.
_CELL_CODECS = {"cp932": "cp932", "utf-8": "utf-8", "utf-8-sig": "utf-8"}

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


class UndeclaredColumn(RuntimeError):
    """A reader used a cell of a column it did not name in Table.rows(columns=…): a bug in the reader."""


class _Undeclared:
    """Stands in a row for the cell of a column the reader did not name (Table.rows(columns=…)): that cell is
    never decoded, so any use of it stops the import instead of reading mojibake."""

    __slots__ = ("header", "position")

    def __init__(self, position: int, header: str) -> None:
        self.position = position
        self.header = header

    def _refuse(self, *args, **kwargs) -> NoReturn:
        raise UndeclaredColumn(
            f"column {self.position} ({self.header!r}) was read but not named in Table.rows(columns=…)"
        )

    def __getattr__(self, name: str) -> NoReturn:
        self._refuse()

    __str__ = __format__ = __bool__ = __len__ = __iter__ = __contains__ = __hash__ = _refuse
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __add__ = __radd__ = __getitem__ = _refuse

    def __repr__(self) -> str:
        return f"<undeclared column {self.position} {self.header!r}>"


def _line_breaks(data: bytes) -> int:
    """How many line endings (CRLF, LF or CR, as bytes.splitlines counts them) `data` holds."""
    return len((data + b"x").splitlines()) - 1


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

    def rows(self, pad: bool = False, columns: list[int | None] | None = None) -> Iterator[tuple[int, list[str]]]:
        """(row number, cells) for every non-empty data row; the header is row 1, as in Excel. With `pad`,
        short rows are filled up and one blank cell is appended (see Columns.at).

        With `columns` (the positions the reader reads, from Columns.find/at/require; None, an absent column,
        is left out), rows are padded and only those cells are decoded: every other cell is a stand-in that
        raises UndeclaredColumn when used, so a column a reader forgot to name fails loudly rather than reading
        undecoded bytes. The bytes of the columns Tatenpo does not read are then not checked for the file's
        encoding: they are never shown or stored, and they cannot change how the file splits into rows and
        cells (see _CELL_CODECS). Undecodable bytes in a named column stop the import with their line, as
        before; a file that is not text at all is refused by open_table (its first bytes) whatever the columns."""
        if columns is None:
            yield from self._padded(self._records(self.encoding), pad)
        elif self.encoding in _CELL_CODECS:
            yield from self._declared(self._records("latin-1"), columns, _CELL_CODECS[self.encoding])
        else:
            yield from self._declared(self._records(self.encoding), columns, None)

    def _padded(self, records: Iterator[tuple[int, list[str]]], pad: bool) -> Iterator[tuple[int, list[str]]]:
        if not pad:
            yield from records
            return
        width = len(self.headers) + 1
        for number, row in records:
            row.extend([""] * (width - len(row)) if len(row) < width else ("",))
            yield number, row

    def _declared(
        self, records: Iterator[tuple[int, list[str]]], columns: list[int | None], codec: str | None
    ) -> Iterator[tuple[int, list[str]]]:
        """Rows of the named columns' cells (decoded with `codec` when read as latin-1), stand-ins elsewhere,
        and the blank cell of Columns.at at the end."""
        width = len(self.headers)
        template: list = [_Undeclared(position, header) for position, header in enumerate(self.headers)] + [""]
        wanted = sorted({position for position in columns if position is not None and position < width})
        for number, row in records:
            if len(row) < width:
                row.extend([""] * (width - len(row)))
            out = template.copy()
            for position in wanted:
                value = row[position]
                if codec is not None and not value.isascii():
                    try:
                        value = value.encode("latin-1").decode(codec)
                    except UnicodeDecodeError as exc:
                        raise _bad_bytes(self._line_of(number, row, position, exc.start), self.encoding) from None
                out[position] = value
            yield number, out

    def _reader(self, raw, encoding: str):
        """A csv reader over the open file decoded as `encoding`."""
        if encoding == "latin-1" and self.encoding == "utf-8-sig":
            raw.seek(len(codecs.BOM_UTF8))  # as the utf-8-sig codec does, so the first cell splits alike
        return csv.reader(io.TextIOWrapper(raw, encoding=encoding, newline=""), delimiter=self.delimiter)

    def _records(self, encoding: str) -> Iterator[tuple[int, list[str]]]:
        """The csv records of the file decoded as `encoding`, numbered, without the header and empty rows."""
        on_progress = self.on_progress
        with self.path.open("rb") as raw:
            reader = self._reader(raw, encoding)
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
                yield number, row

    def _decoded(self, number: int, row: list[str], codec: str) -> list[str]:
        """Every cell of record `number`, read as latin-1, decoded (the header row)."""
        decoded = []
        for position, value in enumerate(row):
            try:
                decoded.append(value.encode("latin-1").decode(codec))
            except UnicodeDecodeError as exc:
                raise _bad_bytes(self._line_of(number, row, position, exc.start), self.encoding) from None
        return decoded

    def _line_of(self, number: int, row: list[str], position: int, offset: int) -> int:
        """The line (1-based, counted as _first_bad_line counts) of character `offset` of cell `position` of
        record `number`, a row read as latin-1 (a character per byte): the lines before the record, then the
        line endings inside it before that byte. Only runs when a cell cannot be decoded."""
        lines_before = 0
        with self.path.open("rb") as raw:
            reader = self._reader(raw, "latin-1")
            for counted, _ in enumerate(reader, start=1):
                if counted == number:
                    break
                lines_before = reader.line_num
        inside = sum(_line_breaks(value.encode("latin-1")) for value in row[:position])
        return lines_before + 1 + inside + _line_breaks(row[position][:offset].encode("latin-1"))


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
    return _bad_bytes(_first_bad_line(path, encoding), encoding)


def _bad_bytes(line: int, encoding: str) -> FileProblem:
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
    # Only the header row is decoded here: bytes further on are checked where they are read (Table.rows).
    read_as = "latin-1" if encoding in _CELL_CODECS else encoding
    try:
        with path.open("rb") as raw:
            text = io.TextIOWrapper(raw, encoding=read_as, newline="")
            first_line = text.readline()
    except UnicodeDecodeError:
        raise _undecodable(path, encoding) from None
    # Amazon's reports are tab-separated; everyone else uses commas.
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    table = Table(path, filename or path.name, encoding, delimiter, [], Columns([]))
    with path.open("rb") as raw:
        reader = table._reader(raw, read_as)
        try:
            headers = next(reader)
        except UnicodeDecodeError:
            raise _undecodable(path, encoding) from None
        except (StopIteration, csv.Error):
            raise FileProblem(_l("The header row cannot be read."), row=1) from None
    if read_as == "latin-1":
        headers = table._decoded(1, headers, _CELL_CODECS[encoding])
    headers = [h.replace("\ufeff", "").strip() for h in headers]
    if not any(headers):
        raise FileProblem(_l("The first row must hold the column names, but it is empty."), row=1)
    table.headers = headers
    table.columns = Columns(headers)
    return table
