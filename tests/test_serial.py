"""Results that serialise: to_dict / to_json and back, media embedded or saved by path."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

import genai_sdk as genai
from genai_sdk.testing import Emulator, FakeProvider


def _image_result() -> genai.ImageResult:
    client = genai.Client(image="fake:x", ledger="memory://", policy="standard", providers={"fake": FakeProvider()})
    return client.images.generate("a teapot", n=2, size="64x32")


def test_an_image_result_round_trips_with_media_embedded() -> None:
    result = _image_result()
    data = json.loads(result.to_json())
    assert data["type"] == "ImageResult" and data["cost"]["usd"] == "0.02" and data["model"] == "fake:x"
    assert data["images"][0]["media_type"] == "image/png" and "base64" in data["images"][0]
    again = genai.ImageResult.from_json(result.to_json())
    assert [i.data for i in again.images] == [i.data for i in result.images]
    assert again.images[0].size == (64, 32) and again.cost == result.cost and isinstance(again.cost.credits, Decimal)
    assert again.policy[0].allowed and again.policy[0].layer == result.policy[0].layer
    assert again.request_ids == result.request_ids and again.warnings == result.warnings


def test_media_saved_by_path(tmp_path: Path) -> None:
    result = _image_result()
    (tmp_path / "media").mkdir()
    text = result.to_json(media_dir=tmp_path / "media")
    paths = [Path(image["path"]) for image in json.loads(text)["images"]]
    assert all(path.is_file() and path.suffix == ".png" for path in paths) and len(set(paths)) == 2
    assert "base64" not in text
    again = genai.ImageResult.from_json(text)
    assert [i.data for i in again.images] == [i.data for i in result.images]
    with pytest.raises(genai.InvalidRequestError, match="is not a folder"):
        result.to_dict(media_dir=tmp_path / "missing")


def test_costs_speech_and_transcripts_round_trip(genai_emulator: Emulator) -> None:
    cost = genai.Cost(Decimal("1.6000"), None, estimated=True)
    assert genai.Cost.from_json(cost.to_json()) == cost and cost.to_dict()["usd"] is None
    client = genai.Client()
    spoken = client.speech.synthesize("Round trip.", model="openai:tts-1")
    back = genai.SpeechResult.from_json(spoken.to_json())
    assert back.audio.data == spoken.audio.data and back.audio.sample_rate == spoken.audio.sample_rate
    transcript = client.speech.transcribe(spoken.audio, model="openai:whisper-1", word_timestamps=True)
    again = genai.Transcript.from_json(transcript.to_json())
    assert again == transcript and again.segments[0].words == transcript.segments[0].words


def test_reading_back_the_wrong_thing_says_so() -> None:
    with pytest.raises(genai.InvalidRequestError, match="not a serialised ImageResult"):
        genai.ImageResult.from_json(genai.Cost(Decimal(1), None).to_json())
    with pytest.raises(genai.InvalidRequestError, match="not JSON"):
        genai.Cost.from_json("{")
    with pytest.raises(genai.InvalidRequestError, match="cannot read this Cost back"):
        genai.Cost.from_json('{"type": "Cost", "credits": "lots", "usd": null}')
    with pytest.raises(genai.InvalidRequestError, match="neither 'base64' nor 'path'"):
        genai.ImageResult.from_dict({"type": "ImageResult", "images": [{"media_type": "image/png"}], "cost": {"credits": "1", "usd": "0"}, "model": "m"})


def test_cli_image_json(genai_emulator: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from genai_sdk.cli import main

    assert main(["image", "a kettle", "-n", "2", "--size", "256x256", "--model", "openai:dall-e-2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["type"] == "ImageResult" and data["cost"]["usd"] == "0.032"
    assert [image["path"] for image in data["images"]] == ["image0.png", "image1.png"]
    again = genai.ImageResult.from_dict(data, base_dir=tmp_path)
    assert again.images[0].size == (256, 256) and again.model == "openai:dall-e-2"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cost": {"credits": "1", "usd": "0.01", "estimated": "no"}}, "cost.estimated: expected true or false"),
        ({"cost": {"credits": "NaN", "usd": None}}, "cost.credits: expected a finite number"),
        ({"cost": {"credits": 1.5, "usd": None}}, "cost.credits: expected a decimal number"),
        ({"model": 5}, "model: expected a string"),
        ({"warnings": "careful"}, "warnings: expected a list"),
        ({"images": [{"media_type": "image/png", "path": "/etc/hostname"}]}, "lies outside"),
        ({"images": [{"media_type": "image/png", "path": "../elsewhere.png"}]}, "lies outside"),
        ({"images": [{"media_type": "image/png", "base64": "aGVsbG8="}]}, "cannot read this ImageResult back"),
        ({"policy": [{"allowed": True, "scores": {"x": "high"}}]}, r"policy\[0\].scores.x: expected a finite number"),
    ],
)
def test_reading_back_checks_every_field(change: dict[str, object], message: str) -> None:
    data = _image_result().to_dict()
    data.update(change)
    with pytest.raises(genai.InvalidRequestError, match=message):
        genai.ImageResult.from_dict(data)


def test_media_paths_are_read_inside_base_dir_only(tmp_path: Path) -> None:
    result = _image_result()
    (tmp_path / "out").mkdir()
    data = result.to_dict(media_dir=tmp_path / "out")  # absolute paths inside tmp_path
    assert genai.ImageResult.from_dict(data, base_dir=tmp_path).images[0].data == result.images[0].data
    with pytest.raises(genai.InvalidRequestError, match="lies outside"):
        genai.ImageResult.from_dict(data, base_dir=tmp_path / "elsewhere")
