"""How every shell command answers: JSON for scripts, a line for people, a clear failure."""
from __future__ import annotations

import json
from typing import Callable

import click

from tatenpo.listings.reading import FileProblem


def emit(data, as_json: bool, text: str | None = None) -> None:
    """Print data as JSON for scripts, or as a line for people."""
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        click.echo(text if text is not None else data)


def fail(message) -> None:
    """Stop with a clear message and a non-zero exit, writing nothing."""
    raise click.ClickException(str(message))


def export_command(group: click.Group, export_csv: Callable[[str], bytes], what: str, summary: str) -> None:
    """`<group> export FILE [--encoding]`: the CSV `export_csv(encoding)` builds, written to FILE with how many
    rows it holds (the header not counted), e.g. "products"; a FileProblem is a clear failure."""

    @group.command("export", help=summary)
    @click.argument("file", type=click.Path(dir_okay=False, writable=True))
    @click.option("--encoding", type=click.Choice(["cp932", "utf-8-sig"]), default="cp932", show_default=True,
                  help="cp932 opens in Japanese Excel; utf-8-sig is UTF-8 with a BOM.")
    def export(file: str, encoding: str) -> None:
        try:
            data = export_csv(encoding)
        except FileProblem as problem:
            fail(problem.message)
        with open(file, "wb") as out:
            out.write(data)
        rows = data.count(b"\r\n") - 1
        click.echo(f"{file}: {rows:,} {what}")
