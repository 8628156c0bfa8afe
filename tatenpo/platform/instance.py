"""The instance folder: generated keys that must survive restarts and never enter git, and the rule that
nothing in it (database, uploads, mails, logs, keys) is readable by other users of the machine."""
from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from cryptography.fernet import Fernet

CREDENTIAL_KEY_FILE = "credential.key"


def private_folder(path: str | Path) -> Path:
    """Create the folder, and each missing parent, for the owner only; narrow the folder if it exists wider."""
    path = Path(path)
    missing = []
    folder = path
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:  # another process made it at the same moment
            pass
    _narrow(path, 0o700)
    return path


def _narrow(path: Path, mode: int) -> None:
    try:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(mode)
    except OSError:  # not ours (a shared parent): what we create inside is still private
        pass


def make_private(instance_path: str | Path) -> int:
    """Take the group's and others' permissions from everything under the instance folder (folders become
    0700, files 0600), for what an older version or a wider umask left readable. Returns how many changed."""
    root = Path(instance_path)
    changed = 0
    if not root.is_dir():
        return 0
    for folder, _folders, files in os.walk(root):
        for path in [Path(folder)] + [Path(folder) / name for name in files]:
            try:
                info = path.lstat()
            except OSError:  # gone meanwhile (a SQLite -shm, say)
                continue
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode) or not mode & 0o077:
                continue
            try:
                path.chmod(mode & 0o700)  # the owner keeps what it had (a socket stays usable)
                changed += 1
            except OSError:
                pass
    return changed


def _read_or_create(path: Path, make) -> str:
    if path.exists():
        return path.read_text().strip()
    private_folder(path.parent)
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
    """Encrypts mall credentials at rest; a separate key so a leaked session secret reveals no passwords.
    Several keys (after `rotate-credential-key`) come comma-separated, the newest first: CREDENTIAL_KEY in
    the environment, or one a line in instance/credential.key."""
    return os.environ.get("CREDENTIAL_KEY") or ",".join(split_keys(_read_or_create(
        Path(instance_path) / CREDENTIAL_KEY_FILE, lambda: Fernet.generate_key().decode()
    )))


def credential_key_file(instance_path: str) -> str:
    """Where the credential keys are kept: instance/credential.key, or "" when CREDENTIAL_KEY sets them."""
    return "" if os.environ.get("CREDENTIAL_KEY") else str(Path(instance_path) / CREDENTIAL_KEY_FILE)


def split_keys(value: str) -> list[str]:
    """'k1,k2' or one key a line → ['k1', 'k2'], newest first, blanks dropped."""
    return [key.strip() for key in value.replace("\n", ",").split(",") if key.strip()]


def read_credential_keys(instance_path: str) -> list[str]:
    """The keys instance/credential.key holds now (another process may have rotated them since we started)."""
    try:
        return split_keys((Path(instance_path) / CREDENTIAL_KEY_FILE).read_text())
    except FileNotFoundError:
        return []


def write_credential_keys(instance_path: str, keys: list[str]) -> None:
    """Replace instance/credential.key at once (a temporary file renamed over it): a process reading it at
    that moment sees the old list or the new one, never half of one."""
    path = Path(instance_path) / CREDENTIAL_KEY_FILE
    private_folder(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("".join(key + "\n" for key in keys))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
