"""Structured logs: one JSON object per line, so a log collector can index every event.
Never pass a credential to a log call: nothing here can tell one from other text.

Under `make run` (TATENPO_LOG_DIR set by the launcher) each process writes its JSON lines to a rotated file
of its own, instance/logs/<process>.log, and the console gets only warnings and errors, one readable line
each, so the banner stays in sight."""
from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, timezone
from logging.handlers import RotatingFileHandler
from pathlib import Path

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()) | {"message", "asctime"}

LOG_DIR_ENV = "TATENPO_LOG_DIR"
LOG_NAME_ENV = "TATENPO_LOG_NAME"
MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                event[key] = value
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return json.dumps(event, ensure_ascii=False, default=str)


class ConsoleFormatter(logging.Formatter):
    """`12:03:04 worker WARNING tatenpo.sync.push: message` — for a person watching `make run`."""

    def __init__(self, process: str) -> None:
        super().__init__(f"%(asctime)s {process} %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


class SharedRotatingFileHandler(RotatingFileHandler):
    """A rotated file that several processes of one kind may share (gunicorn's web workers): a process that
    finds the file already rotated by another opens the new one instead of rotating it a second time."""

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        if self.stream is not None:
            try:
                moved = os.stat(self.baseFilename).st_ino != os.fstat(self.stream.fileno()).st_ino
            except OSError:
                moved = True
            if moved:
                self.stream.close()
                self.stream = self._open()
        return super().shouldRollover(record)


def file_handler(folder: str | Path, process: str) -> logging.Handler:
    from tatenpo.platform.instance import private_folder

    handler = SharedRotatingFileHandler(private_folder(folder) / f"{process}.log", maxBytes=MAX_BYTES,
                                        backupCount=BACKUPS, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    return handler


def console_handler(process: str, level: str | int = "INFO") -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ConsoleFormatter(process))
    handler.setLevel(max(logging.WARNING, logging.getLevelName(level) if isinstance(level, str) else level))
    return handler


def _ours(handler: logging.Handler) -> bool:
    return isinstance(handler.formatter, (JsonFormatter, ConsoleFormatter))


def configure(level: str = "INFO") -> None:
    root = logging.getLogger()
    if any(_ours(h) for h in root.handlers):
        return
    folder = os.environ.get(LOG_DIR_ENV)
    if folder:
        process = os.environ.get(LOG_NAME_ENV) or Path(sys.argv[0]).stem or "python"
        root.addHandler(file_handler(folder, process))
        root.addHandler(console_handler(process, level))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level)


def reset(level: str = "INFO") -> None:
    """Back to our handlers after a library replaced the logging setup (alembic's fileConfig, which also
    disables every logger that existed before it)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for logger in logging.Logger.manager.loggerDict.values():
        if isinstance(logger, logging.Logger):
            logger.disabled = False
    configure(level)


# `rq cron --config tatenpo.platform.logs`: the scheduler builds no app, so RQ's cron reads its logging here
# (rq's DICT_CONFIG setting), the same handlers as every other process.
DICT_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"tatenpo": {"()": "tatenpo.platform.logs._configured_root"}},
}


def _configured_root() -> logging.Handler:
    """Configure the root logger as configure() does; dictConfig wants a handler back: a silent one."""
    configure(os.environ.get("LOG_LEVEL", "INFO"))
    return logging.NullHandler()
