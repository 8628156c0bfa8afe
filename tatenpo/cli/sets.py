"""`flask sets import|export|show`: セット商品 from the shell (tatenpo.stock.sets, tatenpo.stock.set_csv)."""
from __future__ import annotations

import click

from tatenpo.cli.output import emit, export_command, fail
from tatenpo.cli.stock import find_product
from tatenpo.listings.reading import FileProblem
from tatenpo.platform.extensions import db
from tatenpo.stock import set_csv, sets


def register(app) -> None:
    @app.cli.group("sets")
    def group() -> None:
        """セット商品: sets and their parts."""

    @group.command("show")
    @click.argument("code")
    @click.option("--json", "as_json", is_flag=True)
    def show(code: str, as_json: bool) -> None:
        """A set's parts, each part's 販売可能数 and the set's."""
        view = sets.view(find_product(code))
        if view is None:
            fail(f"{code} is not a set product (セット商品ではありません)")
        data = view.as_dict()
        if as_json:
            emit(data, True)
            return
        click.echo(f"{data['code']}  {data['name']}  セット 販売可能数 {data['sellable']:,}")
        for part in data["parts"]:
            mark = "  ← 上限" if part["code"] in data["limited_by"] else ""
            click.echo(f"  {part['code']} ×{part['quantity']}  販売可能数 {part['sellable']:,} → "
                       f"{part['allows']:,} セット{mark}")

    export_command(group, set_csv.export_csv, "rows",
                   "セット商品CSV: write セット商品コード, 構成商品コード, 数量 (one row per part) to FILE.")

    @group.command("import")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    @click.option("--dry-run", is_flag=True, help="Check and preview only: write nothing.")
    @click.option("--json", "as_json", is_flag=True)
    def import_(file: str, dry_run: bool, as_json: bool) -> None:
        """セット商品CSV in: make or change the sets of FILE (all rows or none; their listings are scheduled)."""
        try:
            plan = set_csv.plan_import(file, file)
        except FileProblem as problem:
            fail(problem.message)
        data = {"encoding": plan.encoding, "counts": plan.counts(), "sets": plan.samples,
                "errors": [e.as_dict() for e in plan.problems.errors[:50]], "dry_run": dry_run, "saved": 0}
        if plan.ok and not dry_run:
            try:
                data["saved"] = set_csv.apply_plan(plan)
            except sets.SetError as exc:
                db.session.rollback()
                fail(exc.message)
            db.session.commit()
        else:
            db.session.rollback()
        if as_json:
            emit(data, True)
        else:
            counts = data["counts"]
            click.echo(f"{counts['rows']:,} rows, {counts['sets']:,} sets: 新規 {counts['new']:,}  "
                       f"変更 {counts['changed']:,}  エラー {counts['errors']:,}")
            for error in data["errors"]:
                click.echo(f"  {error['row'] or '-'}行目 {error['column']}: {error['message']}")
            if data["saved"]:
                click.echo(f"saved {data['saved']:,} sets")
        if not plan.ok:
            fail(f"{plan.problems.error_count} rows have errors; nothing was imported")
