"""A dataset job in one process against the same job on a local Ray instance (127.0.0.1 only).

1. Local compute: the bundled Whisper (whisper:tiny.en, one CPU thread each) over CLIPS spoken clips made by the
   bundled Piper voice: `run_items` with one worker against `run_dataset` with 1 and 2 actors (speedup, efficiency).
2. Hosted, I/O-bound: the emulator answering in 250 ms, the same number of requests in flight: `run_items` with 8
   threads against `run_dataset` with 8 actors, with 1 async actor keeping 8 calls in flight, and with 2 async actors
   keeping 4 each.
3. Overheads: `ray.init`, a one-item dataset, the memory of Ray's processes; a rate limit configured against the
   rate achieved.

    python benchmarks/scaleout.py [--clips 32] [--hosted 64]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import psutil  # noqa: E402 - a dependency of Ray
from _common import emulator_env, machine  # noqa: E402

import genai_sdk as genai  # noqa: E402
from genai_sdk.batch import Item, run_items  # noqa: E402

WORDS = "the quick brown fox jumps over a lazy dog while seven red kites circle the quiet harbour at dawn".split()


def clips(folder: Path, count: int) -> list[Item]:
    with genai.Client(ledger="memory://") as client:
        items = []
        for i in range(count):
            text = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(14)).capitalize() + "."
            path = folder / f"clip{i}.wav"
            client.speech.synthesize(text, model="piper:en_US-joe-medium").audio.save(path)
            items.append(Item(f"clip{i}", str(path)))
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--hosted", type=int, default=64)
    parser.add_argument("--no-local", action="store_true", help="skip the Whisper part")
    args = parser.parse_args()
    import ray

    work = Path(tempfile.mkdtemp(prefix="genai-scaleout-"))
    os.environ["GENAI_LEDGER"] = f"sqlite:///{work / 'ledger.db'}"
    started = time.perf_counter()
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False)  # fmt: skip
    print(f"# ray.init {time.perf_counter() - started:.2f} s ({machine()})")
    if not args.no_local:
        local_compute(work, args.clips)
    hosted_io(work, args.hosted)
    ray.shutdown()


def local_compute(work: Path, count: int) -> None:
    from genai_sdk.batch.ray import run_dataset

    items = clips(work, count)
    whisper = {"model": "whisper:tiny.en", "settings": {"provider_options": {"whisper": {"cpu_threads": 1}}}}
    print(f"# {count} clips, whisper:tiny.en, 1 CPU thread a worker")
    with genai.Client() as client:  # the model loaded and warm before timing, as an actor's is after its first batch
        run_items(items[:1], task="transcribe", out=work / "warm", job_id="w", client=client, concurrency=1, **whisper)
        started = time.perf_counter()
        single = run_items(items, task="transcribe", out=work / "single", job_id="j", client=client, concurrency=1,
                           **whisper)  # fmt: skip
        one_process = time.perf_counter() - started
    assert single.counts == {"ok": count}, single.counts
    print(f"  one process, 1 worker   {one_process:7.2f} s")
    for actors in (1, 2):
        started = time.perf_counter()
        done = run_dataset(items, task="transcribe", out=work / f"ray{actors}", job_id="j", workers=actors,
                           cpus_per_worker=0.75, batch_size=4, **whisper)  # fmt: skip
        elapsed = time.perf_counter() - started
        assert done.counts == {"ok": count}, done.counts
        speedup = one_process / elapsed
        print(f"  Ray, {actors} actor{'s' if actors > 1 else ' '}          {elapsed:7.2f} s   speedup {speedup:.2f}x, "
              f"efficiency {speedup / actors:.0%} (actors load the model in the timed run)")


def hosted_io(work: Path, count: int) -> None:
    from genai_sdk.batch.ray import run_dataset

    hosted = [Item(f"h{i}", f"a hosted picture number {i}") for i in range(count)]
    with emulator_env("--latency", "0.25"):
        os.environ["GENAI_LEDGER"] = f"sqlite:///{work / 'hosted.db'}"
        with genai.Client(policy="off") as client:  # the pipeline's own cost, not the content policy's
            started = time.perf_counter()
            local = run_items(hosted, task="image", model="openai:dall-e-2", out=work / "h1", job_id="j", client=client,
                              concurrency=8, settings={"size": "256x256"})  # fmt: skip
            threads = time.perf_counter() - started
        assert local.counts == {"ok": count}, local.counts
        started = time.perf_counter()
        on_ray = run_dataset(hosted, task="image", model="openai:dall-e-2", out=work / "h2", job_id="j", workers=8,
                             cpus_per_worker=0.2, batch_size=2, settings={"size": "256x256"},
                             client_settings={"policy": "off"})  # fmt: skip
        ray_time = time.perf_counter() - started
        assert on_ray.counts == {"ok": count}, on_ray.counts
        print(f"# {count} pictures from the emulator at 250 ms an answer, 8 in flight")
        print(f"  one process, 8 threads  {threads:7.2f} s")
        print(f"  Ray, 8 actors           {ray_time:7.2f} s   ratio {ray_time / threads:.2f} (Ray's time / one process's)")
        for actors, calls in ((1, 8), (2, 4)):
            started = time.perf_counter()
            done = run_dataset(hosted, task="image", model="openai:dall-e-2", out=work / f"a{actors}", job_id="j",
                               workers=actors, calls_per_worker=calls, cpus_per_worker=0.5, batch_size=8,
                               settings={"size": "256x256"}, client_settings={"policy": "off"})  # fmt: skip
            elapsed = time.perf_counter() - started
            assert done.counts == {"ok": count}, done.counts
            print(f"  Ray, {actors} async actor{'s' if actors > 1 else ' '} x {calls} {elapsed:6.2f} s   "
                  f"ratio {elapsed / threads:.2f}")
        print(f"# memory: this process {_rss([psutil.Process()]):.0f} MB, Ray's processes "
              f"{_rss(psutil.Process().children(recursive=True)):.0f} MB")
        started = time.perf_counter()
        run_dataset(hosted[:1], task="image", model="openai:dall-e-2", out=work / "one", job_id="j", workers=1,
                    settings={"size": "256x256"}, client_settings={"policy": "off"})  # fmt: skip
        print(f"# a one-item dataset (an actor started, the SDK imported, one call): {time.perf_counter() - started:.2f} s")
        limited = [Item(f"r{i}", f"a limited picture number {i}") for i in range(60)]
        started = time.perf_counter()
        run_dataset(limited, task="image", model="openai:dall-e-2", out=work / "rl", job_id="j", workers=2,
                    calls_per_worker=8, batch_size=8, settings={"size": "256x256"}, client_settings={"policy": "off"},
                    rate_limit={"openai": {"requests": 10, "per": 1.0}})  # fmt: skip
        elapsed = time.perf_counter() - started
        print(f"# rate limit 10 a second for 2 actors x 8 calls: 60 requests in {elapsed:.2f} s, "
              f"{60 / elapsed:.1f} a second over the whole job (actor start included)")


def _rss(processes: list[psutil.Process]) -> float:
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            pass
    return total / 1e6


if __name__ == "__main__":
    main()
