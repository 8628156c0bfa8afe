"""How every shell command answers: JSON for scripts, a line for people, a clear failure."""
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


def write_csv(file: str, data: bytes, what: str) -> None:
    """Write an exported CSV to FILE and say how many rows it holds (the header not counted), e.g. "products"."""
    with open(file, "wb") as out:
        out.write(data)
    rows = data.count(b"\r\n") - 1
    click.echo(f"{file}: {rows:,} {what}")
