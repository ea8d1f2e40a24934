"""Budgets hold under real concurrency: 4 processes x 16 threads calling through the emulator against one ledger,
on SQLite and on a real PostgreSQL server; and a process killed while holding reservations loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal

import pytest

from genai_sdk.credits import open_ledger
from genai_sdk.testing import Emulator

PROCESSES, THREADS, CALLS = 4, 16, 3
COST = Decimal("1.6")  # dall-e-2 at 256x256: $0.016, 100 credits a dollar
BUDGET = Decimal(100)  # demand is 192 calls, 307.2 credits

WORKER = r"""
import json, sys, threading
import genai_sdk as genai

url, threads, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
# The circuit breaker off: the injected failures come in a burst, and this counts what the ledger does with each.
client = genai.Client(image="openai:dall-e-2", ledger=url, account="team", max_retries=0, circuit_breaker_failures=0)
outcomes, lock = [], threading.Lock()

def work(t):
    for i in range(calls):
        prompt = "a forbidden couch" if (t + i) % 5 == 0 else "an avocado couch"
        try:
            result = client.images.generate(prompt, size="256x256")
            outcome = ["ok", str(result.cost.credits)]
        except genai.BudgetExceededError:
            outcome = ["budget"]
        except genai.ContentPolicyError:
            outcome = ["refused"]
        except genai.ProviderError as exc:
            outcome = ["failed", type(exc).__name__]
        with lock:
            outcomes.append(outcome)

pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
for thread in pool:
    thread.start()
for thread in pool:
    thread.join()
print(json.dumps(outcomes))
"""


def _hammer(url: str, emulator: Emulator) -> None:
    setup = open_ledger(url)
    setup.grant("team", Decimal(1000), "purchase", None)
    from genai_sdk.credits import Budget

    setup.set_budget("team", Budget("month", credits=BUDGET))
    setup.close()
    emulator.fail("images.generate", "server_error", times=12)  # some calls fail after reserving
    emulator.fail("images.generate", "slow", times=10_000, delay=0.03)  # the rest overlap in flight
    env = {**os.environ, **emulator.env()}
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, url, str(THREADS), str(CALLS)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(PROCESSES)
    ]
    outcomes = []
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
        outcomes.extend(json.loads(out))
    assert len(outcomes) == PROCESSES * THREADS * CALLS

    kinds = [o[0] for o in outcomes]
    ok, budget, refused, failed = (kinds.count(k) for k in ("ok", "budget", "refused", "failed"))
    print(f"ok={ok} budget={budget} refused={refused} failed={failed}")
    assert budget > 0, "demand should have exceeded the budget"
    assert refused > 0 and failed == 12

    ledger = open_ledger(url)
    history = ledger.history("team")
    charges = [e for e in history if e.kind == "charge"]
    spent = -sum((e.credits for e in charges), Decimal(0))
    assert spent <= BUDGET, f"the budget was overspent: {spent}"
    assert len(charges) == ok, "every success is charged exactly once"
    assert all(e.credits == -COST for e in charges)
    assert len({e.request_id for e in charges}) == ok
    assert ledger.reserved("team") == 0, "every failure and refusal released its reservation"
    assert sum((e.credits for e in history), Decimal(0)) == ledger.balance("team") == Decimal(1000) - spent
    assert ok >= int(BUDGET / COST) - 8, f"only {ok} calls succeeded: the budget was left mostly unused"
    assert len(emulator.calls("images.generate")) == ok + refused + failed  # budget refusals never left the process
    ledger.close()


def test_sqlite_budget_holds_under_4_processes_x_16_threads(tmp_path_factory: pytest.TempPathFactory, genai_emulator: Emulator) -> None:
    _hammer(f"sqlite://{tmp_path_factory.mktemp('concurrency') / 'ledger.db'}", genai_emulator)


def test_postgres_budget_holds_under_4_processes_x_16_threads(postgres_url: str, genai_emulator: Emulator) -> None:
    _hammer(postgres_url, genai_emulator)


CRASHER = r"""
import sys, threading
import genai_sdk as genai

client = genai.Client(image="openai:dall-e-2", ledger=sys.argv[1], account="crash", reservation_ttl=float(sys.argv[2]))
for _ in range(4):
    threading.Thread(target=lambda: client.images.generate("a couch", size="256x256")).start()
threading.Event().wait()
"""


def _crash(url: str, emulator: Emulator) -> None:
    ttl = 3.0
    setup = open_ledger(url)
    setup.grant("crash", Decimal(10), "purchase", None)
    setup.close()
    emulator.fail("images.generate", "slow", times=4, delay=20)
    env = {**os.environ, **emulator.env()}
    crasher = subprocess.Popen([sys.executable, "-c", CRASHER, url, str(ttl)], env=env, stderr=subprocess.PIPE)
    observer = open_ledger(url, reservation_ttl=ttl)
    deadline = time.monotonic() + 60
    while observer.reserved("crash") < 4 * COST and time.monotonic() < deadline:
        time.sleep(0.05)
    assert observer.reserved("crash") == 4 * COST, "the crasher never held its reservations"
    os.kill(crasher.pid, signal.SIGKILL)
    crasher.wait()
    killed_at = time.monotonic()

    # Another process's view right after the crash: consistent, nothing charged, the credits still held.
    fresh = open_ledger(url, reservation_ttl=ttl)
    assert fresh.balance("crash") == 10
    assert [e.kind for e in fresh.history("crash")] == ["grant"]
    assert sum((e.credits for e in fresh.history("crash")), Decimal(0)) == fresh.balance("crash")
    assert fresh.reserved("crash") == 4 * COST
    from genai_sdk import BudgetExceededError

    with pytest.raises(BudgetExceededError):
        fresh.reserve("crash", Decimal(5), None, "too-soon", "m")

    # Once the reservations expire, their credits come back.
    time.sleep(max(0.0, ttl + 0.5 - (time.monotonic() - killed_at)))
    assert fresh.reserved("crash") == 0
    taken = fresh.reserve("crash", Decimal(10), None, "after", "m")
    fresh.commit(taken, Decimal(10), None)
    assert fresh.balance("crash") == 0
    fresh.close()
    observer.close()


def test_sqlite_crash_loses_nothing(tmp_path_factory: pytest.TempPathFactory, genai_emulator: Emulator) -> None:
    _crash(f"sqlite://{tmp_path_factory.mktemp('crash') / 'ledger.db'}", genai_emulator)


def test_postgres_crash_loses_nothing(postgres_url: str, genai_emulator: Emulator) -> None:
    _crash(postgres_url, genai_emulator)
