"""Benchmark: a sale on one mall → every other mall shows the lower stock. How long does the loop take?

A live installation started like `make run` (tests/live.py: gunicorn, the RQ workers, `rq cron`, the order-mail
SMTP receiver, the sandbox malls), four sandbox malls — 楽天, Yahoo!, Amazon, Shopify — each with a catalog of
--items generated items (about 1.45 SKUs per item: ~290 listings per store at the default 200), linked across
the four by SKU, 在庫数 1000 each, 即時同期 on 楽天 and Amazon only (an order pushes at once on every store
anyway), the scheduled interval at its 5-minute default. Then --purchases purchases, one at a time, each of
one unit of a random product on a random mall (seeded): each is timed from the mall's 201 to the moment every
OTHER mall's stock API shows the new count (polled every 50 ms). The path timed is the whole loop: the mall's
order mail over SMTP → Tatenpo's receiver commits it → a worker reads it into an order (引当) → the pushes to
the three other malls.

Prints each repeat's p50 and p95 in seconds, the medians over --repeats repeats, and p95 ÷ 10 s (target ≤ 1).

`--route api` measures the order-API route instead, with every order mail lost (the sandbox sends none): each
store's order API is on and polled every --poll-seconds (ORDER_POLL_SECONDS, default 120), so the loop is the
next poll of the mall's order API → the order (引当) → the pushes to the three other malls. Target: p95 ≤ the
poll interval + 10 s.

    .venv/bin/python bench/order_to_malls.py [--purchases 50] [--repeats 3] [--items 200]
    .venv/bin/python bench/order_to_malls.py --route api [--poll-seconds 120] [--purchases 20]
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.live import LiveShop, start_live  # noqa: E402 (after the path above)

TARGET_P95 = 10.0
MALLS = ("rakuten", "yahoo", "amazon", "shopify")
IMMEDIATE = {"rakuten": True, "yahoo": False, "amazon": True, "shopify": False}
START = 1000
POLL = 0.05
TIMEOUT = 120.0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(share * len(ordered)) - 1)]


def wait_for_malls(shop: LiveShop, expected: dict[str, int], malls, seconds: float) -> bool:
    """Poll the malls' stock APIs until each of `malls` shows `expected` for every product."""
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        if all(shop.mall_stock(mall) == expected for mall in malls):
            return True
        time.sleep(POLL)
    return False


def buy_without_mail(shop: LiveShop, mall: str, code: str):
    """A purchase whose order mail is lost on its way: only the order API tells Tatenpo."""
    import requests

    item_code, variant = shop.items[mall][code]
    return requests.post(f"{shop.live.sandbox.url}/_sandbox/stores/{shop.remote(mall)}/orders", timeout=30,
                         json={"items": [{"code": item_code, "variant": variant, "quantity": 1}], "mail": False})


def one_repeat(shop: LiveShop, expected: dict[str, int], rng: random.Random, purchases: int, label: str,
               route: str = "mail", timeout: float = TIMEOUT) -> list[float]:
    latencies = []
    for n in range(purchases):
        mall, code = rng.choice(MALLS), rng.choice(shop.codes)
        others = [m for m in MALLS if m != mall]
        response = shop.buy(mall, code, 1) if route == "mail" else buy_without_mail(shop, mall, code)
        sold = time.perf_counter()
        if response.status_code != 201:
            raise SystemExit(f"purchase {n + 1} on {mall}: {response.status_code} {response.text}")
        expected[code] -= 1
        target = expected[code]
        items = {m: shop.items[m][code] for m in others}
        while True:
            shown = {m: {(i["code"], i["variant"]): i["quantity"]
                         for i in shop.live.sandbox.items(shop.remote(m))}[items[m]] for m in others}
            if all(quantity == target for quantity in shown.values()):
                break
            if time.perf_counter() - sold > timeout:
                raise SystemExit(f"purchase {n + 1} ({mall} {code}): other malls show {shown} after "
                                 f"{timeout:.0f} s, expected {target}\n{shop.live.log.read_text()[-3000:]}")
            time.sleep(POLL)
        latencies.append(time.perf_counter() - sold)
        print(f"  {label} purchase {n + 1:2d} on {mall:8s} {code:12s}: {latencies[-1]:.2f} s", flush=True)
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--purchases", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--route", choices=("mail", "api"), default="mail",
                        help="mail: the order mail's route; api: every mail lost, the order APIs polled")
    parser.add_argument("--poll-seconds", type=int, default=120, help="ORDER_POLL_SECONDS for --route api")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    target = TARGET_P95 if args.route == "mail" else args.poll_seconds + 10.0
    settings = {"SYNC_INTERVAL_SECONDS": "300", "LOG_LEVEL": "WARNING"}
    if args.route == "api":
        settings["ORDER_POLL_SECONDS"] = str(args.poll_seconds)
    with tempfile.TemporaryDirectory(prefix="tatenpo-bench-orders-") as tmp:
        folder = Path(tmp)
        with start_live(folder / "live", **settings) as live:
            setup_started = time.perf_counter()
            shop = LiveShop(live, folder, MALLS, items=args.items, start=START, immediate=IMMEDIATE)
            if args.route == "api":
                for mall in MALLS:
                    live.flask("orders", "route", str(shop.stores[mall]["tatenpo"]), "--api", "on")
            expected = {code: START for code in shop.codes}
            # The first push of every listing (a few hundred per mall) is not part of any sale's latency.
            if not wait_for_malls(shop, expected, MALLS, 600):
                print("the first push did not reach every mall within 600 s", file=sys.stderr)
                return 1
            print(f"{len(shop.codes)} listings per store on {len(MALLS)} malls, set up and first pushed in "
                  f"{time.perf_counter() - setup_started:.0f} s", flush=True)
            results = []
            for repeat in range(1, args.repeats + 1):
                latencies = one_repeat(shop, expected, rng, args.purchases, f"#{repeat}", args.route,
                                       max(TIMEOUT, target * 3))
                p50, p95 = statistics.median(latencies), percentile(latencies, 0.95)
                results.append((p50, p95))
                print(f"repeat {repeat}: {len(latencies)} purchases, p50 {p50:.2f} s, p95 {p95:.2f} s, "
                      f"max {max(latencies):.2f} s", flush=True)
    p50 = statistics.median(r[0] for r in results)
    p95 = statistics.median(r[1] for r in results)
    print()
    route = "by order mail" if args.route == "mail" else f"by the order API (mails lost, polled every {args.poll_seconds} s)"
    print(f"sale on one mall → every other mall shows it, {route}, median of {len(results)} repeats of "
          f"{args.purchases} purchases: p50 {p50:.2f} s, p95 {p95:.2f} s")
    print(f"p95 ÷ {target:.0f} s = {p95 / target:.2f}   (target ≤ 1)  {'OK' if p95 <= target else 'OVER'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
