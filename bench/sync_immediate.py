"""Benchmark: 即時同期 latency — a stock edit is committed; how long until the sandbox mall shows it?

A store in immediate mode on the Rakuten sandbox (no reflection delay), one real `python worker.py`, the
default coalescing delay (SYNC_COALESCE_SECONDS, 2 s: a burst of edits becomes one batch). 50 edits, each
--gap seconds after the previous one reached the mall (default 3 s, so every edit waits out the coalescing
delay on its own, as a shop's occasional edit does; --gap 0 measures back-to-back edits, which the running
push picks up in its next round); each is timed from its commit to the moment the sandbox shows it.
Prints the median and the p95 in seconds, and p95 ÷ 5 s (target ≤ 1; the peers' interval is 5–15 minutes).

    .venv/bin/python bench/sync_immediate.py [--edits 50] [--gap 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

from sync_harness import Stack

from tatenpo.platform.extensions import db
from tatenpo.stock import inventory

TARGET_P95 = 5.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=50)
    parser.add_argument("--gap", type=float, default=3.0)
    args = parser.parse_args()
    with Stack() as stack:
        store_id, remote, linked = stack.linked_store("rakuten", items=5, immediate_sync=True)
        product_id, item = linked[0]
        key = (item["code"], item["variant"])
        stack.worker()
        time.sleep(2)  # the worker's start-up is not part of an edit's latency
        latencies = []
        for n in range(args.edits):
            time.sleep(args.gap)
            quantity = 100 + n
            with stack.app.app_context():
                inventory.set_stock(product_id, quantity)
                db.session.commit()  # 即時同期: the push is queued after this commit
                committed = time.perf_counter()
            while stack.sandbox_stock(remote["id"])[key] != quantity:
                if time.perf_counter() - committed > 60:
                    print(f"edit {n + 1}: not at the mall after 60 s", file=sys.stderr)
                    return 1
                time.sleep(0.02)
            latencies.append(time.perf_counter() - committed)
            print(f"  edit {n + 1:2d}: {latencies[-1]:.2f} s", flush=True)
    latencies.sort()
    median = statistics.median(latencies)
    p95 = latencies[max(0, int(round(0.95 * len(latencies))) - 1)]
    print()
    print(f"即時同期 over {len(latencies)} edits ({args.gap:g} s apart): median {median:.2f} s, p95 {p95:.2f} s, max {latencies[-1]:.2f} s")
    print(f"p95 ÷ {TARGET_P95:.0f} s = {p95 / TARGET_P95:.2f}   (target ≤ 1)  {'OK' if p95 <= TARGET_P95 else 'OVER'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
