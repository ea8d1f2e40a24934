"""Cost of the ledger: reserve + commit per call on each backend, and calls per second under contention.

    python benchmarks/ledger.py [--postgres postgresql://...] [--calls 500]

PostgreSQL is measured when --postgres (or GENAI_TEST_POSTGRES_URL) names a server.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal

from _common import machine

from genai_sdk.credits import open_ledger

WORKER = r"""
import sys, time
from decimal import Decimal
from threading import Thread
from genai_sdk.credits import open_ledger
url, threads, calls, tag = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ledger = open_ledger(url)
def work(t):
    for i in range(calls):
        r = ledger.reserve("shared", Decimal("1.6"), Decimal("0.016"), f"{tag}-{t}-{i}", "bench")
        ledger.commit(r, Decimal("1.6"), Decimal("0.016"))
pool = [Thread(target=work, args=(t,)) for t in range(threads)]
[p.start() for p in pool]; [p.join() for p in pool]
"""


def sequential(url: str, calls: int) -> list[float]:
    ledger = open_ledger(url)
    ledger.grant("solo", Decimal(10**9), "bench", None)
    samples = []
    for i in range(calls):
        started = time.perf_counter()
        reservation = ledger.reserve("solo", Decimal("1.6"), Decimal("0.016"), f"seq-{i}-{time.time_ns()}", "bench")
        ledger.commit(reservation, Decimal("1.6"), Decimal("0.016"))
        samples.append(time.perf_counter() - started)
    ledger.close()
    return samples


def threaded(url: str, threads: int, calls: int) -> float:
    ledger = open_ledger(url)
    ledger.grant("shared", Decimal(10**9), "bench", None)

    def work(t: int) -> None:
        for i in range(calls):
            reservation = ledger.reserve("shared", Decimal("1.6"), Decimal("0.016"), f"thr-{t}-{i}-{time.time_ns()}", "bench")
            ledger.commit(reservation, Decimal("1.6"), Decimal("0.016"))

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - started
    ledger.close()
    return threads * calls / elapsed


def processes(url: str, count: int, threads: int, calls: int) -> float:
    open_ledger(url).grant("shared", Decimal(10**9), "bench", None)
    started = time.perf_counter()
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, url, str(threads), str(calls), f"p{p}-{time.time_ns()}"])
               for p in range(count)]
    for worker in workers:
        assert worker.wait() == 0
    return count * threads * calls / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--postgres", default=os.environ.get("GENAI_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    folder = tempfile.mkdtemp()
    backends = {"memory": "memory://", "sqlite": f"sqlite://{folder}/bench.db"}
    if args.postgres:
        backends["postgresql"] = args.postgres
    print(f"# ledger: reserve + commit ({machine()})")
    print(f"{'backend':<11} {'median per call':>16} {'p95':>9} {'8 threads':>14} {'4 procs x 4 thr':>16}")
    for name, url in backends.items():
        samples = sequential(url, args.calls)
        p95 = sorted(samples)[int(len(samples) * 0.95)]
        rate = threaded(url, 8, args.calls // 8)
        multi = processes(url, 4, 4, args.calls // 16) if name != "memory" else float("nan")
        multi_text = "n/a (one process)" if name == "memory" else f"{multi:9.0f} calls/s"
        print(f"{name:<11} {statistics.median(samples) * 1e3:13.3f} ms {p95 * 1e3:6.3f} ms {rate:8.0f} calls/s {multi_text:>16}")


if __name__ == "__main__":
    main()
