"""A CLIP model folder with random weights, built offline in a moment: for tests, examples and benchmarks of
``clip:`` models (the real weights are hundreds of megabytes).

``clip_model(folder)`` saves a tiny CLIPModel (safetensors) with a CLIP tokenizer over a few words and single
letters and a CLIP image processor, as ``save_pretrained`` lays them out; ``real_shaped=True`` gives a model of
ViT-B/32's layout (12 layers, width 768 / 512, 224-pixel input) with a smaller vocabulary, for timing.
"""

from __future__ import annotations

import json
from pathlib import Path

WORDS = ["a", "photo", "of", "cat", "dog", "red", "blue", "green", "square", "circle", "car", "house", "tree", "sky"]


def clip_model(folder: Path, *, real_shaped: bool = False, seed: int = 0) -> Path:
    import torch
    import transformers
    from transformers import CLIPConfig, CLIPModel, CLIPProcessor, CLIPTokenizer
    from transformers.utils import logging as transformers_logging

    # Without torchvision, transformers 5 says it falls back to the PIL processor: name that one at once.
    processor_class = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor

    torch.manual_seed(seed)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "!": 2}
    for word in WORDS:
        vocab[word + "</w>"] = len(vocab)
    for ch in "abcdefghijklmnopqrstuvwxyz0123456789":
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    tokens = folder.parent / f"{folder.name}-vocab"
    tokens.mkdir(parents=True, exist_ok=True)
    (tokens / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (tokens / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    tokenizer = CLIPTokenizer(str(tokens / "vocab.json"), str(tokens / "merges.txt"), model_max_length=77)

    if real_shaped:
        text = {"hidden_size": 512, "intermediate_size": 2048, "num_attention_heads": 8, "num_hidden_layers": 12}
        vision = {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12, "num_hidden_layers": 12,
                  "image_size": 224, "patch_size": 32}  # fmt: skip
        projection, size = 512, 224
    else:
        text = {"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4, "num_hidden_layers": 2}
        vision = {"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4, "num_hidden_layers": 2,
                  "image_size": 30, "patch_size": 6}  # fmt: skip
        projection, size = 16, 30
    config = CLIPConfig(
        text_config={**text, "vocab_size": len(vocab), "max_position_embeddings": 77, "bos_token_id": 0,
                     "eos_token_id": 1, "pad_token_id": 1},  # fmt: skip
        vision_config=vision,
        projection_dim=projection,
    )
    model = CLIPModel(config).eval()
    images = processor_class(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    folder.mkdir(parents=True, exist_ok=True)
    was_on = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()  # no "Writing model shards" bar
    try:
        model.save_pretrained(folder, safe_serialization=True)
        CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    finally:
        if was_on:
            transformers_logging.enable_progress_bar()
    return folder
