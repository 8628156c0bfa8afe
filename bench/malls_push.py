"""Benchmark: push 10,000 items to each sandbox mall through its connector, at the mall's real rate limit.

Prints, per mall, the achieved items/s, the ceiling the mall's limit allows for this push, and their ratio
(target ≥ 0.9), plus how many calls the mall refused as throttled (target 0). The ceiling counts the mall's
burst: ceiling = items ÷ the least time the limit allows —
  rakuten  bulk-upsert 400 items/call, 1 call/s            → (calls − 1) s
  yahoo    setStock 1000 codes/call, 1 call/s              → (calls − 1) s
  shopify  250 quantities/call, cost 10 + 1/quantity, bucket 1000, 100 points/s → (cost − 1000) ÷ 100 s
  amazon   1 SKU/call, 5 calls/s, burst 10                 → (calls − 10) ÷ 5 s   (10,000 SKUs ≈ 33 min)
  rakuten-ftp  no published rate: items/s only (upload + the mall's processing + reading the log)

    .venv/bin/python bench/malls_push.py [--items 10000] [--malls rakuten,yahoo,shopify,amazon,rakuten-ftp]

The sandbox runs as its own process on free ports; pacing goes through an embedded Redis, as in production.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tatenpo.malls import connector_for  # noqa: E402
from tatenpo.malls.base import PushItem  # noqa: E402
from tatenpo.platform import embedded_redis  # noqa: E402

MALLS = ["rakuten", "yahoo", "shopify", "amazon", "rakuten-ftp"]


def ideal_seconds(mall: str, items: int) -> float | None:
    if mall == "rakuten":
        return math.ceil(items / 400) - 1
    if mall == "yahoo":
        return math.ceil(items / 1000) - 1
    if mall == "shopify":
        calls = math.ceil(items / 250)
        return max(0.0, (calls * 10 + items - 1000) / 100)
    if mall == "amazon":
        return max(0.0, (items - 10) / 5)
    return None


def start_sandbox(folder: Path) -> tuple[subprocess.Popen, str]:
    ports = folder / "ports.json"
    env = dict(os.environ, SANDBOX_DB=str(folder / "sandbox.db"), SANDBOX_HTTP_PORT="0", SANDBOX_FTP_PORT="0",
               SANDBOX_PORTS_FILE=str(ports))
    process = subprocess.Popen([sys.executable, "-m", "sandbox"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not ports.exists():
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError("the sandbox did not start")
        time.sleep(0.05)
    return process, json.loads(ports.read_text())["url"]


def bench(mall: str, count: int, url: str, redis: Redis) -> dict:
    # Enough generated products for `count` SKUs (about 1.4 SKUs per product).
    store = requests.post(url + "/_sandbox/stores", json={"mall": mall, "items": int(count / 1.3) + 10},
                          timeout=300).json()
    stock = requests.get(f"{url}/_sandbox/stores/{store['id']}/stock", timeout=300).json()["items"][:count]
    items = [PushItem(n, i["code"], i["variant"], quantity=(n * 7) % 100) for n, i in enumerate(stock)]
    options = {"log_poll_seconds": 0.5, "log_wait_seconds": 600} if mall == "rakuten-ftp" else {}
    connector = connector_for(mall, store["endpoint"], store["credentials"], redis, 30, **options)
    started = time.monotonic()
    results = connector.push(items)
    seconds = time.monotonic() - started
    calls = requests.get(f"{url}/_sandbox/stores/{store['id']}/calls", timeout=60).json()["calls"]
    throttled = sum(1 for c in calls if c["status"] == 429 or c["api"] == "THROTTLED")
    ideal = ideal_seconds(mall, len(items))
    return {"mall": mall, "items": len(items), "ok": sum(r.ok for r in results), "seconds": seconds,
            "items_per_s": len(items) / seconds, "ceiling": len(items) / ideal if ideal else None,
            "ratio": (ideal / seconds) if ideal else None, "throttled": throttled}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--malls", default=",".join(MALLS))
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="tatenpo-bench-malls-"))
    redis_process = None
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        redis_process = embedded_redis.start(folder / "redis", folder / "redis.sock", persist=False)
        redis_url = "unix://" + str(folder / "redis.sock")
    sandbox, url = start_sandbox(folder)
    redis = Redis.from_url(redis_url)
    try:
        for mall in args.malls.split(","):
            r = bench(mall.strip(), args.items, url, redis)
            line = (f"{r['mall']:<12} {r['ok']:>6}/{r['items']} ok in {r['seconds']:7.1f} s  "
                    f"{r['items_per_s']:8.1f} items/s")
            if r["ratio"] is not None:
                line += f"  ceiling {r['ceiling']:8.1f} items/s  ratio {r['ratio']:.3f} (target ≥ 0.9)"
            else:
                line += "  (no published rate limit)"
            print(line + f"  throttled calls: {r['throttled']}", flush=True)
    finally:
        sandbox.terminate()
        sandbox.wait(10)
        redis.close()
        if redis_process is not None:
            embedded_redis.stop(redis_process)
    return 0


if __name__ == "__main__":
    sys.exit(main())
