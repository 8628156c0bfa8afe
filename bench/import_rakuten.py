"""Benchmark: 販売取込 of a generated 100,000-row 楽天 normal-item.csv (CP932, ~55 columns, long descriptions),
end to end as the shop lives it: upload (the web request stores the file) → preview (the worker reads it)
→ 取り込む → import (the worker writes it) → done.

    .venv/bin/python bench/import_rakuten.py [--rows 100000] [--runs 3] [--database-url URL] [--keep FILE]

Two cases, each run --runs times in a fresh child process:

  fresh     an empty database: every listing and product is created.
  reimport  a full database (the same catalog imported before, untimed) and the next week's file: the same
            listings with new stock, so every row is an update; products exist.

Each run prints the seconds of each step and, as the ratio, (upload + preview + confirm + import) ÷ the
seconds to decode and csv-parse the same file alone (measured in the same run: the machine is shared, so
the floor is measured beside what it divides). Targets: ≤ 2.0 on SQLite, ≤ 2.5 on PostgreSQL for a fresh
import, ≤ 2.0 for the re-import; peak memory < 300 MB. The ratio on CPU time is printed too (steadier on a
busy machine). The summary gives the median and the spread of the runs.

How it runs: the child builds the app on a new SQLite database (or --database-url: an empty scratch
database, e.g. PostgreSQL, whose tables are dropped afterwards) and an embedded Redis, and drives it as the
browser does through the Flask test client: POST /imports, the preview job, GET the progress (286 = ready),
POST /imports/<id>/confirm, the import job, GET the progress. The jobs are the RQ jobs
(tatenpo.jobs.preview_listing_import, run_listing_import) run by a SimpleWorker in burst mode in the same
process, so the peak memory covers the web request, the preview and the import. Time the page spends
polling (htmx asks every second) is not counted: it is the same for every file.

Where the time goes: the breakdown times the steps by wrapping the functions that do them (upload storage,
the preview's read — decode, parse, a Record per listing —, the plan against the database, keeping the
records for the import (listings/staging.py), loading them, the writes, split by table (BulkWriter.insert /
update), the rest of each job (mostly the commit)).

Measured on 2026-12-01 at 10:30 UTC on a quiet 2-core machine (load < 1), 100,000 rows, 3 runs each, CPU
seconds of the median run; the morning's figures on the same quiet machine before this round's changes in
brackets:

  SQLite                          fresh                          re-import (every row's stock changed)
  decode + parse alone (floor)    0.60                           0.60
  upload request                  0.13 (0.59)                    0.12 (0.52)
  preview: read                   0.59 (0.89)                    0.59 (0.73)
  preview: plan                   0.10 (0.17)                    0.29 (0.35)
  preview: search texts           — (0.33: now worked out as the rows are written)
  preview: keep records           0.05 (0.19)                    0.08 (0.12)
  import: load records, plan      0.11 (0.21)                    0.25 (0.28)
  import: write                   1.11 (1.37)                    0.12 (0.14)
    products + FTS5 index              0.51
    listings                           0.47                         (update) 0.12
  import: commit, rest            0.23 (0.30)                    0.12 (0.12)
  all, CPU                        2.51 (4.41)                    1.71 (2.43)
  ratio on CPU                    4.17 (4.09–4.18) (7.37)        2.71 (2.58–2.85) (4.07)
  ratio, wall                     4.26 (4.19–4.27) (7.47)        2.76 (2.61–2.90) (4.13)
  peak memory                     229 MB (267)                   239 MB (267)

  PostgreSQL (client CPU; the writes are the server's)
  all, CPU                        1.75                           1.44
  ratio on CPU                    2.80 (2.74–2.86)               2.53 (2.37–2.59)
  ratio, wall                     4.85 (4.56–4.93)               4.07 (3.94–4.23)
  peak memory                     236 MB                         260 MB
  the server's write (wall)       1.7 s: COPY into listings 0.8, products 0.25, the rest 在庫履歴 and linking
                                  re-import: 0.9 s, one UPDATE … FROM of 66,000 rows

What changed this round: the readers name the columns they read and only those cells are decoded — the file
is split into cells read as latin-1, which gives the same cells because CP932's and UTF-8's multibyte
characters never contain `"`, `,`, CR or LF (listings/reading.py) — so the read now costs what the bare parse
does; the upload is written once, into its place, as the request arrives (listings/uploads.py IncomingFile,
platform/web.py); the search texts are worked out as the rows are written, stock-only updates travel as
(quantity, id) pairs, the starting 在庫履歴 is one INSERT … SELECT. An earlier round (on a machine loaded
with other benchmarks, so its ratios are not comparable with these) sent the rows of tables with triggers
through a temporary table, so that FTS5 flushes its index once (bulk.BulkWriter.insert).

Where the rest goes, and why ≤ 2.0 is not in reach on SQLite: the floor is the bare parse (0.60 s), and the
read alone now equals it, so everything else — the plan, the writes, the commit — must fit in one more
floor. The fresh import's writes alone are 1.11 s (1.9 floors): 66,666 products with their FTS5 trigram index
(0.51) and 66,666 listings into a table with seven B-trees (0.47). The re-import's two plans (preview and
import) read the store's 66,000 listings twice (0.48 together); reusing the preview's plan was tried and
reverted (proving the database unchanged reads the same rows). Left alone: FTS5 columnsize=0 (−0.03 s, a
migration rebuilding the index), dropping the search_text B-trees (the listings page's capped count reads
ix_listings_search_text as a covering index; −0.06 s), cache_size/temp_store pragmas (≤ −0.02 s). On
PostgreSQL the client's part meets its 2.5 on CPU; the wall time is the server's COPY into indexed tables
(the bench's create_all schema has no pg_trgm indexes, which would add to it). The bench starts a new RQ
worker for each job, and RQ's unsubscribe sometimes waits a full second for its listener thread: a wall
step that is exactly 1 s longer with no CPU is that, not the import.
"""
from __future__ import annotations

import argparse
import csv
import gc
import io
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

IMAGES = 5
HEADERS = (
    ["商品管理番号（商品URL）", "商品番号", "商品名", "倉庫指定", "ジャンルID", "非製品属性タグID", "キャッチコピー",
     "PC用商品説明文", "スマートフォン用商品説明文", "PC用販売説明文"]
    + [h for n in range(1, IMAGES + 1) for h in (f"商品画像タイプ{n}", f"商品画像パス{n}", f"商品画像名（ALT）{n}")]
    + ["バリエーション項目キー定義", "バリエーション項目名定義", "バリエーション1選択肢定義", "バリエーション2選択肢定義",
       "選択肢タイプ", "商品オプション項目名", "商品オプション選択肢1", "商品オプション選択肢2", "商品オプション選択必須",
       "SKU管理番号", "システム連携用SKU番号", "バリエーション項目キー1", "バリエーション項目選択肢1",
       "バリエーション項目キー2", "バリエーション項目選択肢2", "販売価格", "表示価格", "二重価格文言管理番号", "注文受付数",
       "再入荷お知らせボタン", "のし対応", "在庫数", "在庫戻しフラグ", "在庫切れ時の注文受付", "在庫あり時納期管理番号",
       "在庫切れ時納期管理番号", "在庫あり時出荷リードタイム", "在庫切れ時出荷リードタイム", "送料", "カタログIDなしの理由"]
)
WORDS = ["有田焼", "マグカップ", "㈱髙島屋", "限定①", "手づくり", "～特選～", "贈り物", "国産", "職人", "やわらか",
         "<p>", "</p>", "<br>", "綿100%", "日本製", "電子レンジ可", "食洗機OK", "送料無料", "ギフト包装", "のし対応"]
SIZES = [("s", "S"), ("m", "M"), ("l", "L")]


def text(rng: random.Random, chars: int) -> str:
    out, size = [], 0
    while size < chars:
        word = rng.choice(WORDS)
        out.append(word)
        size += len(word)
    return "".join(out)


def generate(path: Path, rows: int, seed: int = 1, stock_seed: int = 1) -> int:
    """Write the file; returns the number of listings in it. `stock_seed` draws the 在庫数 on its own: the
    same catalog with another seed is next week's file (every listing's stock changed, nothing else)."""
    rng = random.Random(seed)
    stock = random.Random(stock_seed)
    width = len(HEADERS)
    column = {h: i for i, h in enumerate(HEADERS)}
    listings = 0
    written = 0
    with path.open("w", encoding="cp932", newline="") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(HEADERS)
        item = 0
        while written < rows:
            item += 1
            manage = f"item-{item:06d}"
            variations = item % 2 == 0
            product = [""] * width
            product[column["商品管理番号（商品URL）"]] = manage
            product[column["商品番号"]] = f"NO-{item:06d}"
            product[column["商品名"]] = f"{text(rng, 20)} {item}号"
            product[column["ジャンルID"]] = "215783"
            product[column["キャッチコピー"]] = text(rng, 30)
            # Quoted newlines inside the descriptions, as real HTML descriptions have.
            product[column["PC用商品説明文"]] = text(rng, 380) + "\n" + text(rng, 380)
            product[column["スマートフォン用商品説明文"]] = text(rng, 400)
            product[column["PC用販売説明文"]] = text(rng, 200)
            for n in range(1, IMAGES + 1):
                product[column[f"商品画像タイプ{n}"]] = "CABINET"
                product[column[f"商品画像パス{n}"]] = f"/img{item % 97}/{manage}-{n}.jpg"
                product[column[f"商品画像名（ALT）{n}"]] = text(rng, 10)
            if variations:
                product[column["バリエーション項目キー定義"]] = "size"
                product[column["バリエーション項目名定義"]] = "サイズ"
                product[column["バリエーション1選択肢定義"]] = "|".join(label for _, label in SIZES)
            product[column["のし対応"]] = "1"
            writer.writerow(product)
            written += 1
            skus = [(f"{manage}-{key}", label) for key, label in SIZES] if variations else [("normal-inventory", "")]
            for sku, label in skus:
                if written >= rows:
                    break
                row = [""] * width
                row[column["商品管理番号（商品URL）"]] = manage
                row[column["SKU管理番号"]] = sku
                row[column["システム連携用SKU番号"]] = (f"SYS-{item:06d}-{label}" if label else f"SYS-{item:06d}")
                if label:
                    row[column["バリエーション項目キー1"]] = "size"
                    row[column["バリエーション項目選択肢1"]] = label
                row[column["販売価格"]] = str(500 + item % 9500)
                row[column["在庫数"]] = str(stock.randint(0, 300))
                row[column["在庫戻しフラグ"]] = "0"
                row[column["送料"]] = "1"
                writer.writerow(row)
                written += 1
                listings += 1
    return listings


def parse_only(path: Path) -> tuple[float, float, int]:
    """The floor: decode CP932 and csv-parse every row, doing nothing else. (wall s, CPU s, rows)"""
    started, cpu = time.perf_counter(), time.process_time()
    count = 0
    with path.open("rb") as raw:
        for _ in csv.reader(io.TextIOWrapper(raw, encoding="cp932", newline="")):
            count += 1
    return time.perf_counter() - started, time.process_time() - cpu, count


class Clock:
    """Seconds (wall, CPU) spent in named steps, by wrapping the functions that do them; a wrapped function's
    time is kept per phase (web, preview, import: build_plan runs in both jobs)."""

    def __init__(self) -> None:
        self.spent: dict[str, list[float]] = {}
        self.phase = "web"

    def wrap(self, module, name: str, label: str) -> None:
        function = getattr(module, name)

        def timed(*args, **kwargs):
            started, cpu = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                key = f"{self.phase}:{label}"
                wall, used = self.spent.setdefault(key, [0.0, 0.0])
                self.spent[key] = [wall + time.perf_counter() - started, used + time.process_time() - cpu]

        setattr(module, name, timed)

    def wrap_per_table(self, cls, name: str, label: str) -> None:
        """A BulkWriter method, its time kept per table written (`label` + the table's name)."""
        method = getattr(cls, name)

        def timed(writer, table, *args, **kwargs):
            started, cpu = time.perf_counter(), time.process_time()
            try:
                return method(writer, table, *args, **kwargs)
            finally:
                key = f"{self.phase}:{label} {table.name}"
                wall, used = self.spent.setdefault(key, [0.0, 0.0])
                self.spent[key] = [wall + time.perf_counter() - started, used + time.process_time() - cpu]

        setattr(cls, name, timed)

    def step(self, label: str):
        clock = self

        class Step:
            def __enter__(self):
                self.started, self.cpu = time.perf_counter(), time.process_time()

            def __exit__(self, *exc):
                clock.spent[label] = [time.perf_counter() - self.started, time.process_time() - self.cpu]

        return Step()

    def __getitem__(self, label: str) -> list[float]:
        return self.spent.get(label, [0.0, 0.0])


def import_child(path: str, database_url: str | None, reimport_of: str | None) -> None:
    """Run in the child: a new database, an embedded Redis, one store and a logged-in shop; with
    `reimport_of`, that file is imported first (untimed). Prints the steps' seconds as JSON."""
    folder = Path(tempfile.mkdtemp(prefix="tatenpo-bench-"))
    os.environ["TATENPO_INSTANCE"] = str(folder / "instance")
    os.environ.pop("DATABASE_URL", None)
    if database_url:
        os.environ["DATABASE_URL"] = database_url  # read by config.database_url, which picks the driver
    from flask.testing import EnvironBuilder
    from rq import SimpleWorker

    from tatenpo import create_app
    from tatenpo.listings import bulk, importer, staging, uploads
    from tatenpo.models import ImportJob, Listing, Product, Store, User
    from tatenpo.platform import config, embedded_redis
    from tatenpo.platform.extensions import db
    from tatenpo.platform.redis_conn import queue, redis

    redis_process = embedded_redis.start(folder, folder / "redis.sock", persist=False)
    try:
        app = create_app({
            "SQLALCHEMY_DATABASE_URI": config.database_url(str(folder)) if database_url else "sqlite:///" + str(folder / "bench.db"),
            "REDIS_URL": "unix://" + str(folder / "redis.sock"),
            "SECRET_KEY": "bench", "LOG_LEVEL": "WARNING", "WTF_CSRF_ENABLED": False,
            "MAX_CONTENT_LENGTH": 500 * 1024 * 1024,
        })
        with app.app_context():
            if db.inspect(db.engine).get_table_names():
                sys.exit(f"{database_url} is not empty: give the benchmark a scratch database")
            db.create_all()
            user = User(email="bench@example.jp", role="admin", locale="ja")
            user.set_password("bench password 1")
            store = Store(mall="rakuten", name="ベンチ店", auto_sync=False, settings={})
            db.session.add_all([user, store])
            db.session.commit()
            store_id = store.id
            db.session.remove()
            client = app.test_client()
            login = {"email": "bench@example.jp", "password": "bench password 1"}
            assert client.post("/login", data=login).status_code == 302

            def work() -> None:
                SimpleWorker([queue("imports")], connection=redis()).work(burst=True)

            def shop_imports(file: str, clock: Clock) -> int:
                """What the shop does and waits for; returns the job's id."""
                # The browser's part, not timed: the file encoded as the form's body.
                with open(file, "rb") as stream:
                    builder = EnvironBuilder(app, path="/imports", method="POST", content_type="multipart/form-data",
                                             data={"store_id": str(store_id), "create_products": "y",
                                                   "files": (stream, "normal-item.csv")})
                    request = builder.get_request()
                with clock.step("upload request"):
                    response = client.open(request)
                builder.close()
                assert response.status_code == 302, response.get_data(as_text=True)[-500:]
                job_id = int(response.headers["Location"].rsplit("/", 1)[1])
                clock.spent["web peak MB"] = [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0.0]
                clock.phase = "preview"
                with clock.step("preview job"):
                    work()
                clock.phase = "web"
                with clock.step("preview page"):
                    assert client.get(f"/imports/{job_id}/progress").status_code == 286
                    client.get(f"/imports/{job_id}")
                job = db.session.get(ImportJob, job_id)
                assert job.status == "previewed" and job.error_count == 0, (job.status, job.message, job.errors[:3])
                db.session.remove()
                with clock.step("confirm request"):
                    assert client.post(f"/imports/{job_id}/confirm").status_code == 302
                clock.phase = "import"
                with clock.step("import job"):
                    work()
                clock.phase = "web"
                with clock.step("result page"):
                    assert client.get(f"/imports/{job_id}/progress").status_code == 286
                    client.get(f"/imports/{job_id}")
                return job_id

            if reimport_of:
                shop_imports(reimport_of, Clock())  # last week's import: the database is full
            gc.collect()
            clock = Clock()
            clock.wrap(uploads, "save_upload", "store the upload")
            clock.wrap(importer, "analyse", "analyse")
            clock.wrap(importer, "build_plan", "plan")
            clock.wrap(staging, "keep", "keep the records")
            clock.wrap(staging, "load", "load the records")
            clock.wrap(importer, "write", "write")
            clock.wrap_per_table(bulk.BulkWriter, "insert", "insert")
            clock.wrap_per_table(bulk.BulkWriter, "update", "update")
            started, cpu = time.perf_counter(), time.process_time()
            job_id = shop_imports(path, clock)
            total, total_cpu = time.perf_counter() - started, time.process_time() - cpu
            job = db.session.get(ImportJob, job_id)
            summary = {
                "status": job.status, "message": job.message, "result": job.result,
                "listings": db.session.query(Listing).count(), "products": db.session.query(Product).count(),
            }
            if database_url:
                db.session.remove()
                db.drop_all()
        print(json.dumps({
            "total": total, "total_cpu": total_cpu, "steps": clock.spent, **summary,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }))
    finally:
        embedded_redis.stop(redis_process)
        shutil.rmtree(folder, ignore_errors=True)


def run_case(case: str, path: Path, previous: Path | None, database_url: str | None) -> dict:
    parse_seconds, parse_cpu, _rows = parse_only(path)
    command = [sys.executable, __file__, "--child", str(path)]
    if previous is not None:
        command += ["--reimport-of", str(previous)]
    if database_url:
        command += ["--database-url", database_url]
    child = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if child.returncode != 0:
        print(child.stdout, child.stderr, file=sys.stderr)
        sys.exit(child.returncode)
    result = json.loads(child.stdout.strip().splitlines()[-1])
    result.update(parse=parse_seconds, parse_cpu=parse_cpu, ratio=result["total"] / parse_seconds,
                  ratio_cpu=result["total_cpu"] / parse_cpu)
    return result


# What each step is, in the order the shop meets them; nested steps are indented.
STEPS = [
    ("upload request", "upload request (the web request: validate, store the file, queue the preview)"),
    ("store the upload", "  of which storing the file (copy + SHA-256)"),
    ("preview job", "preview job (worker: read the file, plan, keep the records)"),
    ("read", "  read: decode, csv-parse, a Record per listing"),
    ("preview plan", "  plan against the database"),
    ("keep the records", "  keep the records for the import (marshal to disk)"),
    ("preview page", "progress poll (286) + preview page"),
    ("confirm request", "confirm request (取り込む: queue the import)"),
    ("import job", "import job (worker, one transaction)"),
    ("load the records", "  load the preview's records"),
    ("import plan", "  plan against the database"),
    ("write", "  write (bulk inserts / updates)"),
    ("insert products", "    products (on SQLite with their FTS5 search index)"),
    ("insert stock_history", "    在庫履歴"),
    ("insert listings", "    listings"),
    ("update listings", "    listings updated"),
    ("import rest", "  the rest: commit, job bookkeeping"),
    ("result page", "progress poll (286) + result page"),
]


def breakdown(result: dict) -> dict[str, list[float]]:
    """The steps of STEPS from the clock's phases: the preview's analyse is its read and its plan; the import's
    is loading the staged records and its plan."""
    spent = result["steps"]
    zero = [0.0, 0.0]

    def minus(a, *others):
        return [max(0.0, x - sum(o[i] for o in others)) for i, x in enumerate(a)]

    steps = {key: list(value) for key, value in spent.items() if ":" not in key}
    steps["store the upload"] = spent.get("web:store the upload", zero)
    steps["read"] = minus(spent.get("preview:analyse", zero), spent.get("preview:plan", zero))
    steps["preview plan"] = spent.get("preview:plan", zero)
    steps["keep the records"] = spent.get("preview:keep the records", zero)
    steps["load the records"] = spent.get("import:load the records", zero)
    steps["import plan"] = spent.get("import:plan", zero)
    steps["write"] = spent.get("import:write", zero)
    for key in ("insert products", "insert stock_history", "insert listings", "update listings"):
        if spent.get(f"import:{key}", zero)[0] >= 0.005:  # a table the import wrote to (not the empty calls)
            steps[key] = spent[f"import:{key}"]
    steps["import rest"] = minus(steps.get("import job", zero), spent.get("import:analyse", zero),
                                 spent.get("import:write", zero))
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="runs of each case (the summary gives the spread)")
    parser.add_argument("--cases", default="fresh,reimport", help="fresh, reimport or both (comma-separated)")
    parser.add_argument("--keep", help="write the generated file here and keep it")
    parser.add_argument("--database-url", help="an empty scratch database to import into (default: a new SQLite file)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--reimport-of", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import_child(args.child, args.database_url, args.reimport_of)
        return
    path = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="tatenpo-bench-file-")) / "normal-item.csv"
    started = time.perf_counter()
    listings = generate(path, args.rows)
    print(f"generated {args.rows:,} rows ({listings:,} listings, {len(HEADERS)} columns, "
          f"{path.stat().st_size / 1024 / 1024:.1f} MB CP932) in {time.perf_counter() - started:.1f} s")
    week = path.with_name(path.stem + "-next-week.csv")
    generate(week, args.rows, stock_seed=2)
    where = "SQLite" if not args.database_url else args.database_url.split(":", 1)[0]
    targets = {"fresh": 2.0 if where == "SQLite" else 2.5, "reimport": 2.0}
    summary = []
    for case in [c.strip() for c in args.cases.split(",") if c.strip()]:
        results = []
        for run in range(1, args.runs + 1):
            if case == "fresh":
                result = run_case(case, path, None, args.database_url)
            else:
                result = run_case(case, week, path, args.database_url)
            results.append(result)
            steps = breakdown(result)
            print(f"\n{case} #{run} on {where}: {result['status']} — {result['message']}")
            print(f"  decode + csv-parse alone: {result['parse']:.2f} s (CPU {result['parse_cpu']:.2f} s)")
            for key, label in STEPS:
                if key in steps:
                    wall, used = steps[key]
                    print(f"  {label:<76} {wall:6.2f} s  (CPU {used:5.2f})")
            print(f"  upload → done: {result['total']:.2f} s (CPU {result['total_cpu']:.2f} s); "
                  f"ratio {result['ratio']:.2f} (target ≤ {targets[case]}), on CPU time {result['ratio_cpu']:.2f}")
            print(f"  peak memory {result['peak_mb']:.0f} MB (web request alone {steps['web peak MB'][0]:.0f} MB); "
                  f"{result['listings']:,} listings, {result['products']:,} products")
        ratios = [r["ratio"] for r in results]
        cpu = [r["ratio_cpu"] for r in results]
        peak = max(r["peak_mb"] for r in results)
        summary.append(
            f"{case:<9} {where}: ratio median {statistics.median(ratios):.2f} "
            f"(runs {', '.join(f'{r:.2f}' for r in ratios)}), "
            f"on CPU {statistics.median(cpu):.2f} ({', '.join(f'{r:.2f}' for r in cpu)}); target ≤ {targets[case]} "
            f"{'OK' if statistics.median(ratios) <= targets[case] else 'OVER'}; peak {peak:.0f} MB "
            f"{'OK' if peak < 300 else 'OVER'} (< 300)"
        )
    print("\nsummary (upload → preview → 取り込む → done ÷ decode+parse of the same file):")
    for line in summary:
        print("  " + line)
    week.unlink()
    if not args.keep:
        shutil.rmtree(path.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
