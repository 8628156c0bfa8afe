"""What `make run` adds for a person trying Tatenpo: the sandbox malls beside the app, and a demo
sandbox store per mall on first start. Until the sandbox exists this adds nothing."""
from __future__ import annotations

import importlib.util


def sandbox_available() -> bool:
    try:
        return importlib.util.find_spec("sandbox.__main__") is not None
    except ImportError:
        return False


def prepare(app) -> None:
    """Runs before the processes start (inside the app context)."""


def extra_processes(python: str) -> list:
    from .launcher import Child

    if not sandbox_available():
        return []
    return [Child("sandbox", [python, "-m", "sandbox"])]


def banner_lines() -> list[str]:
    return []
