"""Rank pictures with a local CLIP model: score a picture against texts, classify it zero-shot, and keep the best
of several generated candidates.

Uses the CLIP model in a folder given as the first argument (for example one saved from
openai/clip-vit-base-patch32), or else builds a tiny random one, so that it runs offline in seconds (its scores
then mean nothing, but every call takes the real path). The candidates come from a stand-in image backend.

    python examples/clip_rank.py [clip-folder]
"""

import sys
import tempfile
from pathlib import Path

from PIL import Image as PILImage

import genai_sdk as genai
from genai_sdk.testing import FakeProvider


def main() -> None:
    if len(sys.argv) > 1:
        folder = Path(sys.argv[1])
    else:
        from genai_sdk.testing.tiny_clip import clip_model

        folder = clip_model(Path(tempfile.mkdtemp()) / "tiny-clip")
    client = genai.Client(image="fake:painter", image_scoring=f"clip:{folder}", ledger="memory://",
                          providers={"fake": FakeProvider()})
    picture = PILImage.new("RGB", (224, 224), (210, 40, 40))

    scores = client.images.score(picture, ["a red square", "a blue circle", "a green tree"])
    for s in scores.scores:
        print(f"score {s.text!r}: similarity {s.similarity:+.3f}, probability {s.probability:.3f}")

    labels = client.images.classify(picture, ["cat", "dog", "car"])
    print("classify:", ", ".join(f"{s.label} {s.probability:.3f}" for s in labels.labels))

    best = client.images.generate("a red square", n=2, best_of=4, size="64x64")
    print(f"best 2 of 4: scores {', '.join(f'{s:+.3f}' for s in best.scores)}; cost {best.cost}")


if __name__ == "__main__":
    main()
