"""Where the web request writes an uploaded file as it arrives: instance/uploads/incoming/, beside the uploads
kept for import (listings/uploads.py), so that keeping one is a rename, not a second write of 100 MB.

platform/web.py's Request asks for an IncomingFile per uploaded file and closes them all at the request's end;
closing removes a file nobody kept (a refused form, an upload cut short).
"""
from __future__ import annotations

import io
import os
import secrets
import time
from pathlib import Path

from flask import current_app

from tatenpo.platform.instance import private_folder

# Incoming files older than this are what a web process that stopped mid-upload left: `prune` removes them.
_STALE_HOURS = 24


def folder() -> Path:
    return Path(current_app.instance_path) / "uploads" / "incoming"


class IncomingFile(io.BufferedRandom):
    """An uploaded file as the web request receives it, on disk in `folder()`. `keep` moves it where the upload
    is kept; closing it removes it otherwise."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(io.FileIO(path, "w+", opener=_private))

    def keep(self, target: Path) -> None:
        """Move the file to `target`; closed first (Windows moves no open file)."""
        super().close()
        os.replace(self.path, target)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.path.unlink(missing_ok=True)  # a kept file is no longer there


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)  # the shop's data: owner only, whatever the umask


def incoming() -> IncomingFile:
    """A new file for an upload the web request is receiving."""
    return IncomingFile(private_folder(folder()) / f"{secrets.token_hex(12)}.part")


def prune() -> None:
    """Remove the incoming files a web process that stopped mid-upload left (a live request closes its own)."""
    before = time.time() - _STALE_HOURS * 3600
    for path in folder().glob("*.part"):
        try:
            if path.stat().st_mtime < before:
                path.unlink()
        except FileNotFoundError:  # its request closed it meanwhile
            pass
