"""Local CLIP models (``clip:``) through the SDK's real loading code, on the CPU, with a tiny random model saved to a
folder: scores and rankings checked against transformers called directly on the same inputs."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

import genai_sdk as genai

pytest.importorskip("transformers", reason="the CLIP tests need the 'local' extra: pip install -e '.[dev,local]'")

from genai_sdk.testing import FakeProvider  # noqa: E402
from genai_sdk.testing.tiny_clip import clip_model  # noqa: E402

TEXTS = ["a red square", "a blue circle", "a photo of a dog", "green sky"]


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clip_model(tmp_path_factory.mktemp("models") / "tiny-clip")


@pytest.fixture
def client(clip_folder: Path) -> genai.Client:
    return genai.Client(image_scoring=f"clip:{clip_folder}", ledger="memory://")


def _picture(colour: tuple[int, int, int], size: tuple[int, int] = (48, 40), stripe: int = 0) -> genai.Image:
    from PIL import Image as PILImage
    from PIL import ImageDraw

    picture = PILImage.new("RGB", size, colour)
    if stripe:
        ImageDraw.Draw(picture).rectangle((0, 0, stripe, size[1]), fill=(255 - colour[0], 255 - colour[1], 20))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return genai.Image.from_bytes(buffer.getvalue())


def _direct(folder: Path, images: list[genai.Image], texts: list[str]) -> tuple[list[list[float]], list[list[float]]]:
    """transformers itself, with none of the SDK: cosine similarities and the softmax of logits_per_image."""
    import torch
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(folder).eval()
    processor = CLIPProcessor.from_pretrained(folder)
    inputs = processor(text=texts, images=[i.to_pil().convert("RGB") for i in images], return_tensors="pt", padding=True)
    with torch.no_grad():
        image_embeds = model.get_image_features(pixel_values=inputs["pixel_values"])
        text_embeds = model.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        image_embeds = getattr(image_embeds, "pooler_output", image_embeds)
        text_embeds = getattr(text_embeds, "pooler_output", text_embeds)
        image_embeds = image_embeds / image_embeds.norm(dim=-1, keepdim=True)
        text_embeds = text_embeds / text_embeds.norm(dim=-1, keepdim=True)
        cosine = image_embeds @ text_embeds.T
        probabilities = (model.logit_scale.exp() * cosine).softmax(dim=-1)
    return cosine.tolist(), probabilities.tolist()


def test_score_matches_transformers(client: genai.Client, clip_folder: Path) -> None:
    image = _picture((200, 30, 30), stripe=10)
    result = client.images.score(image, TEXTS)
    cosine, probabilities = _direct(clip_folder, [image], TEXTS)
    assert [s.text for s in result.scores] == TEXTS
    assert result.similarities == pytest.approx(cosine[0], abs=1e-5)
    assert result.probabilities == pytest.approx(probabilities[0], abs=1e-5)
    assert sum(result.probabilities) == pytest.approx(1.0, abs=1e-5)
    assert result.best.similarity == max(result.similarities)
    assert result.model == f"clip:{clip_folder}" and not result.warnings
    assert result.cost.usd is None and result.cost.credits > 0  # unpriced by default, as a local model is: no warning
    again = client.images.score(image, TEXTS)
    assert again.similarities == result.similarities and again.probabilities == result.probabilities


def test_score_is_priced_per_compute_second_and_charged_once(clip_folder: Path) -> None:
    client = genai.Client(image_scoring=f"clip:{clip_folder}", ledger="memory://", local_usd_per_second="0.001")
    result = client.images.score(_picture((10, 200, 10)), TEXTS[:2])
    assert result.cost.usd is not None and result.cost.usd > 0 and not result.warnings
    charges = [e for e in client.credits.history() if e.kind == "charge"]
    assert len(charges) == 1 and -charges[0].credits == result.cost.credits


def test_classify_ranks_labels_as_transformers_does(client: genai.Client, clip_folder: Path) -> None:
    image = _picture((30, 30, 220), stripe=6)
    labels = ["cat", "dog", "car", "house", "tree"]
    result = client.images.classify(image, labels)
    prompts = [f"a photo of a {label}" for label in labels]
    _, probabilities = _direct(clip_folder, [image], prompts)
    expected = sorted(range(len(labels)), key=lambda i: -probabilities[0][i])
    assert [s.label for s in result.labels] == [labels[i] for i in expected]
    assert [s.probability for s in result.labels] == pytest.approx([probabilities[0][i] for i in expected], abs=1e-5)
    assert result.label == labels[expected[0]] and result.template == "a photo of a {label}"

    custom = client.images.classify(image, labels, template="a drawing of a {label}")
    _, drawn = _direct(clip_folder, [image], [f"a drawing of a {label}" for label in labels])
    assert {s.label: s.probability for s in custom.labels} == pytest.approx(dict(zip(labels, drawn[0], strict=True)), abs=1e-5)


def test_the_model_loads_once(client: genai.Client, clip_folder: Path) -> None:
    from genai_sdk.providers.clip import MODELS

    client.images.score(_picture((1, 2, 3)), ["a cat"])
    loads = MODELS.loads
    other = genai.Client(ledger="memory://")
    other.images.score(_picture((4, 5, 6)), ["a dog"], model=f"clip:{clip_folder}")
    assert MODELS.loads == loads


def test_async_score_and_classify(clip_folder: Path) -> None:
    image = _picture((120, 60, 200))

    async def main() -> tuple[genai.ImageScores, genai.Classification]:
        async with genai.AsyncClient(image_scoring=f"clip:{clip_folder}", ledger="memory://") as client:
            return await client.images.score(image, TEXTS), await client.images.classify(image, ["cat", "dog"])

    scores, classes = asyncio.run(main())
    cosine, probabilities = _direct(clip_folder, [image], TEXTS)
    assert scores.similarities == pytest.approx(cosine[0], abs=1e-5)
    _, label_probabilities = _direct(clip_folder, [image], ["a photo of a cat", "a photo of a dog"])
    assert {s.label: s.probability for s in classes.labels} == pytest.approx(
        {"cat": label_probabilities[0][0], "dog": label_probabilities[0][1]}, abs=1e-5
    )


def test_a_refused_label_stops_the_call_before_anything_runs(clip_folder: Path) -> None:
    from genai_sdk.providers.clip import MODELS

    client = genai.Client(image_scoring=f"clip:{clip_folder}-not-loaded-yet", ledger="memory://")
    loads = MODELS.loads
    with pytest.raises(genai.ContentPolicyError) as info:
        client.images.classify(_picture((9, 9, 9)), ["cat", "a nude portrait of a woman"])
    assert info.value.stage == "prompt" and MODELS.loads == loads  # the folder is not even looked at
    assert [e.kind for e in client.credits.history()] == ["refusal"]


def test_bad_inputs_are_typed_errors(client: genai.Client) -> None:
    image = _picture((1, 1, 1))
    with pytest.raises(genai.InvalidRequestError, match="at least one"):
        client.images.score(image, [])
    with pytest.raises(genai.InvalidRequestError, match="label 1 is empty"):
        client.images.classify(image, ["cat", "  "])
    with pytest.raises(genai.InvalidRequestError, match="texts"):
        client.images.score(image, [3])  # type: ignore[list-item]
    with pytest.raises(genai.InvalidRequestError):
        client.images.score(b"this is not an image", ["a cat"])
    with pytest.raises(genai.InvalidRequestError, match="image"):
        client.images.score(12, ["a cat"])
    with pytest.raises(genai.InvalidRequestError, match="label"):
        client.images.classify(image, ["cat"], template="a photo")
    with pytest.raises(genai.InvalidRequestError, match="allow_dowload"):
        client.images.score(image, ["a cat"], provider_options={"clip": {"allow_dowload": True}})
    assert client.credits.history() == []


def test_no_model_configured_says_how_to_set_one() -> None:
    client = genai.Client(ledger="memory://")
    with pytest.raises(genai.ConfigError, match="image_scoring.*GENAI_IMAGE_SCORING.*clip:"):
        client.images.score(_picture((1, 1, 1)), ["a cat"])


def test_a_model_id_not_in_the_cache_names_the_option(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    client = genai.Client(image_scoring="clip:openai/clip-vit-base-patch32", ledger="memory://")
    with pytest.raises(genai.ConfigError, match="allow_download"):
        client.images.score(_picture((1, 1, 1)), ["a cat"])
    assert [e.kind for e in client.credits.history()] == []  # released, not charged


def _candidates(count: int) -> list[genai.Image]:
    return [_picture(((53 * i) % 256, (101 * i + 40) % 256, (17 * i + 200) % 256), stripe=3 * i) for i in range(count)]


def test_best_of_returns_the_candidates_clip_ranks_highest(clip_folder: Path) -> None:
    from decimal import Decimal

    fake = FakeProvider(usd_per_image="0.01")
    made = _candidates(5)
    fake.script(made)
    client = genai.Client(image="fake:any", image_scoring=f"clip:{clip_folder}", ledger="memory://",
                          providers={"fake": fake})  # fmt: skip
    prompt = "a red square"
    result = client.images.generate(prompt, n=2, best_of=5)
    cosine, _ = _direct(clip_folder, made, [prompt])
    order = sorted(range(5), key=lambda i: -cosine[i][0])
    assert [image.data for image in result.images] == [made[i].data for i in order[:2]]
    assert result.scores == pytest.approx([cosine[i][0] for i in order[:2]], abs=1e-5)
    assert [call.n for call in fake.calls] == [5]  # one generation call of all the candidates
    charges = [e for e in client.credits.history() if e.kind == "charge"]
    assert sorted(str(e.model) for e in charges) == [f"clip:{clip_folder}", "fake:any"]
    generation = next(e for e in charges if e.model == "fake:any")
    assert generation.usd == Decimal("0.05")  # all five candidates, at a cent each
    assert result.cost.credits == -sum(e.credits for e in charges)


def test_best_of_splits_by_the_models_max_n_and_charges_every_candidate(clip_folder: Path) -> None:
    from decimal import Decimal

    from genai_sdk._catalog import ModelInfo

    class OneAtATime(FakeProvider):
        def describe(self, model_name: str) -> ModelInfo:
            import dataclasses

            return dataclasses.replace(super().describe(model_name), max_n=1)

    fake = OneAtATime()
    made = _candidates(3)
    fake.script(*([image] for image in made))
    client = genai.Client(image="fake:one", image_scoring=f"clip:{clip_folder}", ledger="memory://",
                          providers={"fake": fake})  # fmt: skip
    result = client.images.generate("a blue circle", best_of=3)
    assert [call.n for call in fake.calls] == [1, 1, 1] and len(result.images) == 1
    cosine, _ = _direct(clip_folder, made, ["a blue circle"])
    best = max(range(3), key=lambda i: cosine[i][0])
    assert result.image.data == made[best].data
    (generation,) = [e for e in client.credits.history() if e.kind == "charge" and e.model == "fake:one"]
    assert generation.usd == Decimal("0.03")  # one call, split into three backend calls: every candidate charged


def test_best_of_is_checked_before_anything_is_generated(clip_folder: Path) -> None:
    fake = FakeProvider()
    client = genai.Client(image="fake:any", ledger="memory://", providers={"fake": fake})
    with pytest.raises(genai.ConfigError, match="image_scoring"):
        client.images.generate("a cat", best_of=3)
    with pytest.raises(genai.InvalidRequestError, match="best_of=2 is fewer than n=3"):
        client.images.generate("a cat", n=3, best_of=2, clip_model=f"clip:{clip_folder}")
    with pytest.raises(genai.InvalidRequestError, match="best_of"):
        client.images.generate("a cat", best_of=0, clip_model=f"clip:{clip_folder}")
    assert fake.calls == [] and client.credits.history() == []


def test_async_best_of(clip_folder: Path) -> None:
    fake = FakeProvider()
    made = _candidates(4)
    fake.script(made)

    async def main() -> genai.ImageResult:
        async with genai.AsyncClient(image="fake:any", ledger="memory://", providers={"fake": fake}) as client:
            return await client.images.generate("green sky", best_of=4, clip_model=f"clip:{clip_folder}")

    result = asyncio.run(main())
    cosine, _ = _direct(clip_folder, made, ["green sky"])
    best = max(range(4), key=lambda i: cosine[i][0])
    assert result.image.data == made[best].data and result.scores == pytest.approx([cosine[best][0]], abs=1e-5)


def test_genai_score_and_classify_commands(
    clip_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from genai_sdk.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GENAI_LEDGER", "memory://")
    _picture((200, 30, 30)).save(tmp_path / "red.png")
    model = f"clip:{clip_folder}"
    assert main(["score", "red.png", "a red square", "a blue circle", "--model", model, "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)["scores"]
    direct = genai.Client(ledger="memory://").images.score(tmp_path / "red.png", ["a red square", "a blue circle"],
                                                           model=model)  # fmt: skip
    assert [round(s["similarity"], 5) for s in scores] == [round(s, 5) for s in direct.similarities]
    assert main(["classify", "red.png", "cat", "dog", "car", "--model", model]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["text", "probability", "similarity"] and len(table) == 4
    assert main(["score", "red.png", "x"]) != 0  # no model given or configured: one line says how to set one
    assert "image_scoring" in capsys.readouterr().err
