"""RQ entry points. Thin: open the app context, call the domain, commit. An error propagates to RQ
(retry, failed-job registry); nothing here swallows it."""
from __future__ import annotations

import functools
import os

from flask import Flask, has_app_context

_app: Flask | None = None
_app_pid: int | None = None


def application() -> Flask:
    global _app, _app_pid
    if _app is None:
        from . import create_app

        _app = create_app()
        _app_pid = os.getpid()
    elif _app_pid != os.getpid():
        # A forked work-horse must not reuse the parent's database connections.
        from .extensions import db

        with _app.app_context():
            for engine in db.engines.values():
                engine.dispose(close=False)
        _app_pid = os.getpid()
    return _app


def with_app(job):
    """Run the job inside the app context (reusing one when the caller already has it, as tests do)."""

    @functools.wraps(job)
    def wrapped(*args, **kwargs):
        if has_app_context():
            return job(*args, **kwargs)
        with application().app_context():
            return job(*args, **kwargs)

    return wrapped


@with_app
def sweep() -> None:
    """The scheduler's round (every SYNC_INTERVAL_SECONDS): note the tick, then push what is due."""
    from . import health
    from .extensions import db

    health.beat(health.SCHEDULE_HEARTBEAT)
    db.session.commit()
