"""The instance folder: generated keys that must survive restarts and never enter git."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet


def _read_or_create(path: Path, make) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    # O_EXCL: when two processes start at once, exactly one key wins and both read it.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def secret_key(instance_path: str) -> str:
    """Signs sessions and CSRF tokens."""
    return os.environ.get("SECRET_KEY") or _read_or_create(
        Path(instance_path) / "secret_key", lambda: secrets.token_hex(32)
    )


def credential_key(instance_path: str) -> str:
    """Encrypts mall credentials at rest; a separate key so a leaked session secret reveals no passwords."""
    return os.environ.get("CREDENTIAL_KEY") or _read_or_create(
        Path(instance_path) / "credential.key", lambda: Fernet.generate_key().decode()
    )
