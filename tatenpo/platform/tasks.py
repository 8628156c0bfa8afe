"""Background jobs on RQ: each job declares its queue and limits beside itself (`@job`), runs inside the app
context, and is enqueued by its dotted path (`enqueue("tatenpo.jobs.push_store", …)`), so that code which
queues work never imports the module of the jobs — the domain stays below its entry points.

A worker builds one app per process (`application()`); a forked work-horse drops the database connections
it inherited instead of sharing them with its parent.
"""
from __future__ import annotations

import functools
import importlib
import os
from dataclasses import dataclass
from typing import Any, Callable, Optional

from flask import Flask, has_app_context
from rq.job import Job

from tatenpo.platform.redis_conn import queue

_app: Optional[Flask] = None
_app_pid: Optional[int] = None

DAY = 24 * 3600


@dataclass(frozen=True)
class JobSpec:
    """Where a job runs and how long RQ keeps it: declared once, beside the job."""

    queue: str
    timeout: int
    result_ttl: int = 3600
    failure_ttl: int = 7 * DAY


def application() -> Flask:
    """The process's app, built on first use (a worker's jobs, the scheduler's)."""
    global _app, _app_pid
    if _app is None:
        from tatenpo import create_app  # the factory imports every layer; the jobs need it only when they run

        _app = create_app()
        _app_pid = os.getpid()
    elif _app_pid != os.getpid():
        from tatenpo.platform.extensions import db

        with _app.app_context():
            for engine in db.engines.values():
                engine.dispose(close=False)
        _app_pid = os.getpid()
    return _app


def job(queue_name: str, *, timeout: int, result_ttl: int = 3600, failure_ttl: int = 7 * DAY):
    """Declare a background job: its queue and limits, and that it runs in the app context (reusing the
    caller's when there is one, as tests and the shell have). Errors propagate to RQ (retry, failed-job
    registry); nothing here swallows them."""
    spec = JobSpec(queue_name, timeout, result_ttl, failure_ttl)

    def decorate(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapped(*args, **kwargs):
            if has_app_context():
                return func(*args, **kwargs)
            with application().app_context():
                return func(*args, **kwargs)

        wrapped.spec = spec
        return wrapped

    return decorate


def spec_of(path: str) -> JobSpec:
    """The declaration of the job at `path` ("package.module.function")."""
    module, _, name = path.rpartition(".")
    spec = getattr(getattr(importlib.import_module(module), name), "spec", None)
    if spec is None:
        raise ValueError(f"{path} is not declared with @job")
    return spec


def enqueue(path: str, *args: Any, queue_name: Optional[str] = None, job_id: Optional[str] = None,
            description: Optional[str] = None) -> Job:
    """Queue the job at `path` with its declared limits; `queue_name` overrides its queue (a store whose
    pushes wait minutes for the mall goes to its own queue)."""
    spec = spec_of(path)
    return queue(queue_name or spec.queue).enqueue(
        path, *args, job_id=job_id, description=description,
        job_timeout=spec.timeout, result_ttl=spec.result_ttl, failure_ttl=spec.failure_ttl,
    )
