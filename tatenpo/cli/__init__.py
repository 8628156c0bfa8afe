"""Shell commands (`flask --app app …`) for operators and scripts. Each group lives in its own module."""
from __future__ import annotations

import json

import click


def emit(data, as_json: bool, text: str | None = None) -> None:
    """Print data as JSON for scripts, or as a line for people."""
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        click.echo(text if text is not None else data)


def fail(message) -> None:
    """Stop with a clear message and a non-zero exit, writing nothing."""
    raise click.ClickException(str(message))


def register_commands(app) -> None:
    from tatenpo.cli import listings, stock, stores, support, sync, users

    for module in (users, stores, stock, support, sync, listings):
        module.register(app)
