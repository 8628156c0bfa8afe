"""Uploaded files waiting to be imported: kept under instance/uploads/<random id>/ until the import is done,
with their size and SHA-256 recorded on the ImportJob. Shared by 販売取込, 在庫取込 and 受注取込.

The web request writes each uploaded file straight under instance/uploads/incoming/ as it arrives (an
IncomingFile: platform/incoming_files.py, platform/web.py's Request), and save_upload moves it into its upload's
folder: a 100 MB
file is written to disk once, not to a temporary file first and copied after.
"""
from __future__ import annotations

import hashlib
import secrets
import shutil
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO, Optional

from flask import current_app
from flask_babel import lazy_gettext as _l

from tatenpo.listings.reading import FileProblem
from tatenpo.models import ImportJob, utcnow
from tatenpo.platform.extensions import db
from tatenpo.platform import incoming_files
from tatenpo.platform.incoming_files import IncomingFile
from tatenpo.platform.instance import private_folder

_BLOCK = 1 << 20


def upload_root() -> Path:
    return Path(current_app.instance_path) / "uploads"


def size_limit() -> int:
    return int(current_app.config.get("MAX_CONTENT_LENGTH") or 100 * 1024 * 1024)


def _safe_name(filename: str) -> str:
    name = Path(filename or "upload.csv").name.strip() or "upload.csv"
    return name[:200]


def save_upload(
    files: list[tuple[str, BinaryIO]],
    *,
    kind: str,
    store_id: Optional[int],
    user_id: Optional[int],
    options: Optional[dict] = None,
) -> ImportJob:
    """Copy the uploaded streams to disk (move them, for IncomingFiles) and add an ImportJob (status
    `uploaded`); the caller commits."""
    files = [(name, stream) for name, stream in files if name]
    if not files:
        raise FileProblem(_l("Choose a CSV file to upload."))
    folder = upload_root() / secrets.token_hex(12)
    private_folder(folder)  # uploaded files and mails are the shop's data: owner only
    limit = size_limit()
    saved = []
    total = 0
    digest = hashlib.sha256()
    try:
        for number, (filename, stream) in enumerate(files, start=1):
            path = folder / f"{number}.csv"
            if isinstance(stream, IncomingFile):
                total = _read(stream, digest, total, limit)
                stream.keep(path)
            else:
                with path.open("wb") as out:
                    total = _read(stream, digest, total, limit, out.write)
            saved.append({"path": str(path), "name": _safe_name(filename)})
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    prune()
    job = ImportJob(
        kind=kind,
        store_id=store_id,
        user_id=user_id,
        filename=" + ".join(f["name"] for f in saved)[:255],
        stored_path=saved[0]["path"],
        file_size=total,
        file_sha256=digest.hexdigest(),
        status="uploaded",
        options={**(options or {}), "files": saved},
    )
    db.session.add(job)
    return job


def _read(stream: BinaryIO, digest, total: int, limit: int, write=None) -> int:
    """Read the stream to its end into `digest` (and `write`); returns `total` plus its size, which may not
    pass `limit`."""
    while block := stream.read(_BLOCK):
        total += len(block)
        if total > limit:
            raise FileProblem(_l("The file is too large (the limit is %(mb)s MB).", mb=limit // (1024 * 1024)))
        digest.update(block)
        if write is not None:
            write(block)
    return total


def job_files(job: ImportJob) -> list[tuple[Path, str]]:
    files = (job.options or {}).get("files") or (
        [{"path": job.stored_path, "name": job.filename}] if job.stored_path else []
    )
    result = [(Path(f["path"]), f["name"]) for f in files]
    if not result or any(not path.exists() for path, _ in result):
        raise FileProblem(_l("The uploaded file is no longer available. Upload it again."))
    return result


def discard(job: ImportJob) -> None:
    """Remove the stored upload (after a successful import)."""
    for path, _ in ((Path(f["path"]), f["name"]) for f in (job.options or {}).get("files") or []):
        folder = path.parent
        if folder.parent == upload_root():
            shutil.rmtree(folder, ignore_errors=True)


# Uploads that were previewed but never imported are kept this long, then removed.
KEEP_DAYS = 7


def prune(days: int = KEEP_DAYS) -> int:
    """Remove the stored files of imports left unconfirmed (or failed) for `days`; the history row stays."""
    from sqlalchemy import select

    stale = db.session.scalars(
        select(ImportJob).where(
            ImportJob.status.in_(("uploaded", "previewing", "previewed", "failed")),
            ImportJob.stored_path.is_not(None),
            ImportJob.created_at < utcnow() - timedelta(days=days),
        )
    ).all()
    for job in stale:
        discard(job)
        job.stored_path = None
        job.options = {**(job.options or {}), "files": []}
    incoming_files.prune()
    return len(stale)
