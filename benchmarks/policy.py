"""Content policy: recall and false alarms on the held-out labelled set and on PartiPrompts, and check latency.

    python benchmarks/policy.py [--level standard] [--show 20]

Prints, on tests/data/policy_eval.tsv (which the classifier never trains on): recall per category and overall
(a disallowed prompt counts as caught when it is refused), false alarms on its benign half (tricky and ordinary
prompts apart) and on the 1,632 PartiPrompts; latency p50 and p99 of a text check with the rules alone and with
rules plus classifier, on one CPU core; and the latency of an image check. The figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from _common import machine

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT / "tests" / "data" / "policy_eval.tsv"
PARTI = ROOT.parent / "shared" / "data" / "partiprompts" / "PartiPrompts.tsv"
# Padding that must not dilute a request.
STYLE_SUFFIX = ", golden hour light, shallow depth of field, 85mm lens, highly detailed, trending on artstation, sharp focus"
STYLE_PREFIX = "masterpiece, best quality, 8k, ultra realistic, "


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def latency(check: object, texts: list[str], policy: object) -> tuple[float, float]:
    times = []
    for text in texts:
        policy._decisions.clear()  # type: ignore[attr-defined]  # time the check, not the cache
        started = time.perf_counter()
        check(text)  # type: ignore[operator]
        times.append((time.perf_counter() - started) * 1000)
    return percentile(times, 0.5), percentile(times, 0.99)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--level", default="standard", choices=("standard", "strict"))
    parser.add_argument("--show", type=int, default=0, help="print this many misses and false alarms")
    parser.add_argument("--parti", type=Path, default=PARTI)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the target says

    from genai_sdk.policy import Policy, PolicyConfig
    from genai_sdk.policy._classifier import shared_classifier

    print(machine())
    full = Policy(PolicyConfig(args.level, args.level))
    rules_only = Policy(PolicyConfig(args.level, args.level, classifier=False))
    if shared_classifier() is None:
        sys.exit("the policy extra is not installed: pip install -e '.[policy]'")
    full.check("warm up")
    rules_only.check("warm up")

    data = rows(EVAL)
    caught: dict[str, list[bool]] = defaultdict(list)
    right_category: dict[str, list[bool]] = defaultdict(list)
    misses, alarms = [], []
    by_layer: Counter[str] = Counter()
    for row in data:
        decision = full.check(row["prompt"])
        label = row["label"]
        if label == "benign":
            caught[f"benign/{row['kind']}"].append(not decision.allowed)
            if not decision.allowed:
                alarms.append((row["prompt"], decision.reason))
        else:
            caught[label].append(not decision.allowed)
            right_category[label].append(label in decision.categories)
            if decision.allowed:
                misses.append((label, row["kind"], row["prompt"]))
            else:
                by_layer[decision.layer] += 1
    disallowed = [c for c in caught if not c.startswith("benign")]
    print(f"\nheld-out set {EVAL.name}: {len(data)} prompts, level {args.level}")
    print(f"{'category':20} {'prompts':>7} {'recall':>7} {'right category':>15}")
    for category in sorted(disallowed):
        hits = caught[category]
        print(f"{category:20} {len(hits):7} {sum(hits) / len(hits):7.3f} {sum(right_category[category]) / len(hits):15.3f}")
    everything = [h for c in disallowed for h in caught[c]]
    print(f"{'overall':20} {len(everything):7} {sum(everything) / len(everything):7.3f}")
    kinds: dict[str, list[bool]] = defaultdict(list)
    for row in data:
        if row["label"] != "benign":
            kinds[row["kind"]].append(not full.check(row["prompt"]).allowed)
    print("recall by kind: " + ", ".join(f"{k} {sum(v) / len(v):.3f} ({len(v)})" for k, v in sorted(kinds.items())))
    bad = [r["prompt"] for r in data if r["label"] != "benign"]
    padded_after = sum(not full.check(p + STYLE_SUFFIX).allowed for p in bad) / len(bad)
    padded_before = sum(not full.check(STYLE_PREFIX + p).allowed for p in bad) / len(bad)
    print(f"recall with style words added: after the prompt {padded_after:.3f}, before it {padded_before:.3f}")
    print("deciding layer of the refusals: " + ", ".join(f"{k} {v}" for k, v in by_layer.most_common()))
    for kind in ("tricky", "ordinary"):
        hits = caught[f"benign/{kind}"]
        print(f"false alarms, benign {kind}: {sum(hits)}/{len(hits)} = {sum(hits) / len(hits):.3f}")

    if args.parti.is_file():
        parti = [r["Prompt"] for r in rows(args.parti)]
        parti_alarms = [(p, d.reason) for p in parti if not (d := full.check(p)).allowed]
        print(f"false alarms, PartiPrompts: {len(parti_alarms)}/{len(parti)} = {len(parti_alarms) / len(parti):.4f}")
    else:
        parti_alarms = []
        print(f"PartiPrompts not found at {args.parti}: skipped")

    alone = [(r, rules_only.check(r["prompt"])) for r in data]
    alone_recall = [not d.allowed for r, d in alone if r["label"] != "benign"]
    alone_alarms = [not d.allowed for r, d in alone if r["label"] == "benign"]
    print(f"rules alone (without the policy extra): recall {sum(alone_recall) / len(alone_recall):.3f}, "
          f"false alarms on the benign half {sum(alone_alarms) / len(alone_alarms):.3f}")  # fmt: skip

    texts = [r["prompt"] for r in data]
    rules_p50, rules_p99 = latency(rules_only.check, texts, rules_only)
    full_p50, full_p99 = latency(full.check, texts, full)
    print(f"\ntext check latency, one core: rules alone p50 {rules_p50:.2f} ms p99 {rules_p99:.2f} ms; "
          f"rules + classifier p50 {full_p50:.2f} ms p99 {full_p99:.2f} ms")  # fmt: skip

    from genai_sdk._media import Image
    from genai_sdk.testing._media_maker import make_image

    for size in (512, 1024):
        picture = Image.from_bytes(make_image("an avocado couch", size, size, 0, None, "png"))
        full.check_image(picture)
        times = []
        for _ in range(20):
            started = time.perf_counter()
            full.check_image(picture)
            times.append((time.perf_counter() - started) * 1000)
        faces = []
        for _ in range(20):
            started = time.perf_counter()
            full.check_image(picture, people=["someone"])
            faces.append((time.perf_counter() - started) * 1000)
        print(f"image check {size}x{size}: NSFW p50 {statistics.median(times):.1f} ms p99 {percentile(times, 0.99):.1f} ms; "
              f"with the face check p50 {statistics.median(faces):.1f} ms")  # fmt: skip

    if args.show:
        print("\nmisses:")
        for label, kind, prompt in misses[: args.show]:
            print(f"  [{label}/{kind}] {prompt}")
        print("false alarms:")
        for prompt, reason in (alarms + parti_alarms)[: args.show]:
            print(f"  {prompt}\n      -> {reason}")


if __name__ == "__main__":
    main()
