"""Benchmark: the push engine's own work per 1,000 items, outside the mall's wait, next to the mall's floor.

A push to 楽天 cannot go faster than its bulk-upsert allows: 400 items a call, 1 call a second, so 1,000
items take at least 2.5 s (the floor). A wall-clock ratio over that floor (bench/sync_full_push.py) hides up
to a second of engine work per call in the wait; this bench measures the work itself while a real push runs
(the Rakuten connector against the sandbox mall, real HTTP, the mall's pace):

    engine CPU   this process's CPU time outside the database calls (claiming, leases, building and
                 parsing the mall's requests and answers, recording) — time.process_time;
    DB time      the wall time inside the driver's execute calls (SQLAlchemy cursor events) and the history's
                 COPY (PostgreSQL), whoever does the work (SQLite in this process, PostgreSQL's server);
                 commits are not counted (bench/db_clock.py, which bench/sync_db_cost.py counts with too);
    engine work  their sum, per 1,000 items pushed, ÷ the floor (target ≤ 10 %: the engine could feed a
                 mall ten times faster than 楽天 allows).

The sandbox mall's own work and the network are not the engine's and are not counted. The push runs --runs
times (3) on a fresh schedule of every listing; each run is printed with the median.

    .venv/bin/python bench/engine_overhead.py [--listings 10000] [--runs 3] [--database postgresql://…]
                                              [--statements]

--statements prints, after each run, the DB time and calls per 1,000 items of each statement.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

from sync_harness import Stack

from bench.db_clock import DbClock
from tatenpo.models import Store
from tatenpo.platform.extensions import db
from tatenpo.stock import inventory
from tatenpo.sync import push

BATCH, RATE = 400, 1.0  # bulk-upsert: items per call, calls per second
FLOOR_PER_1000 = 1000 / BATCH / RATE  # seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database", default=None)
    parser.add_argument("--statements", action="store_true", help="where the DB time goes, statement by statement")
    args = parser.parse_args()
    url = args.database.replace("postgresql://", "postgresql+psycopg://", 1) if args.database else None
    results = []
    with Stack(database_url=url) as stack:
        items = int(args.listings * 0.82) + 10  # every fourth sandbox item has several SKUs
        store_id, _remote, linked = stack.linked_store("rakuten", items=items, listings=args.listings)
        with stack.app.app_context():
            clock = DbClock(db.engine)
            for run in range(1, args.runs + 1):
                scheduled = inventory.schedule_store(db.session.get(Store, store_id))
                db.session.commit()
                clock.reset()
                wall, cpu = time.perf_counter(), time.process_time()
                outcome = push.push_store(store_id, "cli")
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                pushed = outcome.run.succeeded
                assert pushed == scheduled == len(linked), (pushed, scheduled, len(linked))
                per = 1000 / pushed
                engine_cpu = (cpu - clock.cpu) * per
                db_time = clock.seconds * per
                work = engine_cpu + db_time
                results.append((engine_cpu, db_time, work, wall * per))
                print(f"run {run}: {pushed:,} items in {wall:.1f} s; per 1,000 items: engine CPU {engine_cpu * 1000:.0f} ms"
                      f" + DB {db_time * 1000:.0f} ms = {work * 1000:.0f} ms = {work / FLOOR_PER_1000:.1%} of the "
                      f"floor's {FLOOR_PER_1000:.1f} s (wall {wall * per:.2f} s)", flush=True)
                if args.statements:
                    for statement, (spent, calls) in sorted(clock.by_statement.items(), key=lambda kv: -kv[1][0]):
                        print(f"    {spent * per * 1000:6.1f} ms {calls * per:6.1f}×  {statement}")
                db.session.remove()
    median = [statistics.median(r[i] for r in results) for i in range(4)]
    share = median[2] / FLOOR_PER_1000
    print()
    print(f"per 1,000 items pushed, median of {args.runs} runs: engine CPU {median[0] * 1000:.0f} ms, "
          f"DB {median[1] * 1000:.0f} ms, engine work {median[2] * 1000:.0f} ms; the mall's floor "
          f"{FLOOR_PER_1000:.1f} s ({BATCH} per call, {RATE:.0f} call/s); wall {median[3]:.2f} s")
    print(f"engine work ÷ floor = {', '.join(f'{r[2] / FLOOR_PER_1000:.1%}' for r in results)}; median {share:.1%}"
          f"   target ≤ 10 %  {'OK' if share <= 0.10 else 'OVER'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
