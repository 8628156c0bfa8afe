"""The preview's reading of an uploaded file, kept beside the file for the import that follows.

Reading a 100,000-row CSV (decoding CP932, parsing, building a Record per listing) is the largest part of an
import. The preview has already done it, so the import takes the preview's records instead of reading the
file a second time: the rows the shop confirmed are the rows written, and the import is quicker by the whole
read. The plan (what to create, link and update) is still built again by the import, against the database as
it is then.

The records are stored with `marshal` (plain tuples, lists and dicts: the fastest load Python has). A stage
is used only when it was written for the same file (SHA-256), the same format, the same choice of items and
by the same Python; otherwise — or when it is missing or damaged — the import reads the file as before.
"""
from __future__ import annotations

import logging
import marshal
import operator
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Optional

from tatenpo.listings.records import Record
from tatenpo.models import ImportJob

log = logging.getLogger(__name__)

_FILENAME = "records.marshal"
_VERSION = 3
_FRAME = 5000
# Every field of a Record but the writer's folded title (worked out by the import, see keep), which comes
# last: a stored row is the Record's arguments in order.
_STORED = [name for name in Record.__slots__ if name != "folded_title"]
assert Record.__slots__[-1] == "folded_title"
_fields = operator.attrgetter(*_STORED)  # a record's stored fields as a tuple, in one C call


@dataclass
class Staged:
    format: str
    encoding: str
    records: list[Record]
    skipped_reasons: dict[str, int]


def _path(job: ImportJob) -> Optional[Path]:
    return Path(job.stored_path).parent / _FILENAME if job.stored_path else None


def _key(job: ImportJob, reading: dict[str, Any]) -> tuple:
    return (_VERSION, sys.version_info[:2], job.file_sha256, tuple(_STORED), repr(sorted(reading.items())))


def keep(job: ImportJob, reading: dict[str, Any], staged: Staged) -> None:
    """Store the preview's records (`reading`: the options that chose them). The texts only the writer needs
    (the new rows' search texts) are left to the import: working them out there costs less than storing and
    loading them. Written in frames of a few thousand records (memory stays flat) to a temporary name and
    renamed: a crash leaves no stage or a whole one."""
    path = _path(job)
    if path is None or not path.parent.is_dir():
        return
    partial = path.with_suffix(".partial")
    records = staged.records
    try:
        with partial.open("wb") as out:
            _frame(out, (_key(job, reading), staged.format, staged.encoding, staged.skipped_reasons, len(records)))
            for start in range(0, len(records), _FRAME):
                _frame(out, list(map(_fields, records[start : start + _FRAME])))
        os.replace(partial, path)
    except (OSError, ValueError) as exc:  # a full disk, or a value marshal cannot store: the import reads the file
        log.warning("import %s: the preview's records were not kept (%s)", job.id, exc)
        partial.unlink(missing_ok=True)


def load(job: ImportJob, reading: dict[str, Any]) -> Optional[Staged]:
    """The stage written for this job's file and reading options, or None (then read the file)."""
    path = _path(job)
    if path is None or not path.exists():
        return None
    try:
        with path.open("rb") as stream:
            frames = _frames(stream)
            key, format_name, encoding, skipped_reasons, count = next(frames)
            if key != _key(job, reading):
                return None
            records = [Record(*row) for frame in frames for row in frame]
    except (OSError, EOFError, ValueError, TypeError, StopIteration):
        log.warning("import %s: the preview's records could not be loaded; reading the file again", job.id)
        return None
    if len(records) != count:
        log.warning("import %s: the preview's records are incomplete; reading the file again", job.id)
        return None
    return Staged(format_name, encoding, records, skipped_reasons)


def _frame(out: BinaryIO, value: Any) -> None:
    data = marshal.dumps(value)
    out.write(len(data).to_bytes(8, "little"))
    out.write(data)


def _frames(stream: BinaryIO) -> Iterator[Any]:
    # A frame at a time, each read whole: marshal.load on the stream itself reads it in small pieces, four
    # times slower. A damaged length must not make us allocate gigabytes: no frame outruns the file.
    left = os.fstat(stream.fileno()).st_size
    while header := stream.read(8):
        size = int.from_bytes(header, "little")
        left -= 8 + size
        if len(header) != 8 or left < 0:
            raise EOFError("the stage ends inside a frame")
        yield marshal.loads(stream.read(size))


def discard(job: ImportJob) -> None:
    path = _path(job)
    if path is not None:
        path.unlink(missing_ok=True)
