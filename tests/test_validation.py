"""Requests are checked against the catalog before anything is sent: no test here may reach the emulator."""

from collections.abc import Iterator
from dataclasses import replace
from datetime import date

import pytest

import genai_sdk as genai
from genai_sdk.testing import Emulator


@pytest.fixture
def checked(client: genai.Client, genai_emulator: Emulator) -> Iterator[genai.Client]:
    yield client
    assert genai_emulator.calls() == [], "an invalid request reached the network"
    assert client.credits.history() == []


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"size": "640x480"}, genai.InvalidRequestError, "size='640x480' is not available for openai:dall-e-2 (generate): use one of 256x256, 512x512, 1024x1024"),
        ({"size": "big"}, genai.InvalidRequestError, "not of the form 'WIDTHxHEIGHT'"),
        ({"n": 11}, genai.InvalidRequestError, "ask for between 1 and 10 images"),
        ({"n": 0}, genai.InvalidRequestError, "ask for between 1 and 10 images"),
        ({"quality": "hd"}, genai.InvalidRequestError, "quality='hd' is not available for openai:dall-e-2: use one of standard"),
        ({"style": "vivid", "model": "openai:gpt-image-1.5", "quality": "ultra"}, genai.InvalidRequestError, "use one of low, medium, high, auto"),
        ({"model": "openai:dall-e-3"}, genai.ModelRetiredError, "openai:dall-e-3 was retired on 2026-05-12; use openai:gpt-image-1.5 instead"),
        ({"model": "openai:gpt-image-1"}, genai.ModelRetiredError, "retired on 2026-10-23"),
        ({"model": "openai:gpt-image-9"}, genai.InvalidRequestError, "unknown model 'openai:gpt-image-9'; models known for openai: openai:dall-e-2"),
        ({"model": "gpt-image-1.5"}, genai.ConfigError, "write it as 'provider:model'"),
        ({"model": "nosuch:model"}, genai.ConfigError, "unknown provider 'nosuch'"),
        ({"model": "openai:gpt-image-2", "size": "1000x1000"}, genai.InvalidRequestError, "multiples of 16"),
        ({"model": "openai:gpt-image-2", "size": "3840x1024"}, genai.InvalidRequestError, "aspect ratio"),
        ({"provider_options": {"openai": {"colour": "red"}}}, genai.InvalidRequestError, "unknown key(s) colour"),
        ({"provider_options": {"openai": "red"}}, genai.InvalidRequestError, "map a provider name to a dict"),
    ],
)
def test_invalid_generate_requests(checked: genai.Client, kwargs: dict, error: type, fragment: str) -> None:
    with pytest.raises(error) as info:
        checked.images.generate("a couch", **kwargs)
    assert fragment in str(info.value)


def test_retired_video_models(client: genai.Client) -> None:
    with pytest.raises(genai.ModelRetiredError, match=r"openai:sora-2 was retired on 2026-09-24 \(OpenAI shut the Videos API down"):
        client.videos.generate("a panda", model="openai:sora-2")


def test_retired_error_carries_date_and_replacement(checked: genai.Client) -> None:
    with pytest.raises(genai.ModelRetiredError) as info:
        checked.images.generate("a couch", model="openai:dall-e-3")
    assert info.value.retired_on == "2026-05-12"
    assert info.value.replacement == "openai:gpt-image-1.5"


def test_prompt_rules(checked: genai.Client) -> None:
    with pytest.raises(genai.InvalidRequestError, match="the prompt is empty"):
        checked.images.generate("   ")
    with pytest.raises(genai.InvalidRequestError, match="1001 characters; openai:dall-e-2 accepts at most 1000"):
        checked.images.generate("x" * 1001)


def test_unsupported_operation_names_models_that_can(checked: genai.Client) -> None:
    picture = genai.Image.from_pil(__import__("PIL.Image", fromlist=["Image"]).new("RGB", (64, 64)))
    with pytest.raises(genai.UnsupportedError, match=r"openai:gpt-image-1.5 cannot do images.variations; models that can: openai:dall-e-2"):
        checked.images.variations(picture, model="openai:gpt-image-1.5")


def test_edit_input_checks(checked: genai.Client) -> None:
    from PIL import Image as PILImage

    wide = PILImage.new("RGB", (128, 64))
    with pytest.raises(genai.InvalidRequestError, match="need a square image; this one is 128x64"):
        checked.images.edit(wide, "add a hat")
    square = PILImage.new("RGB", (64, 64))
    with pytest.raises(genai.InvalidRequestError, match="2 input images given; openai:dall-e-2 combines at most 1"):
        checked.images.edit([square, square], "combine")
    with pytest.raises(genai.InvalidRequestError, match="the mask is 32x32 but the image is 64x64"):
        checked.images.edit(square, "a hat", mask=PILImage.new("RGBA", (32, 32)))
    with pytest.raises(genai.InvalidRequestError, match="must be a path, bytes, a genai.Image or a PIL image, not int"):
        checked.images.edit(42, "a hat")
    with pytest.raises(genai.InvalidRequestError, match="no such file"):
        checked.images.edit("missing.png", "a hat")
    with pytest.raises(genai.InvalidRequestError, match="not a PNG, JPEG, WebP or GIF"):
        checked.images.edit(b"plain text", "a hat")


def test_unsupported_settings_become_warnings(client: genai.Client) -> None:
    result = client.images.generate("a couch", size="256x256", style="vivid", seed=3, steps=20, negative_prompt="ugly")
    joined = " | ".join(result.warnings)
    assert "no style setting: style='vivid' was not applied" in joined
    assert "does not support seed" in joined
    assert "does not support steps" in joined
    assert "does not support negative_prompt" in joined


def test_missing_key_is_a_config_error(genai_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    client = genai.Client(image="openai:dall-e-2")
    with pytest.raises(genai.ConfigError, match="set OPENAI_API_KEY"):
        client.images.generate("a couch")
    assert genai_emulator.calls() == []


def test_missing_models_and_settings_say_what_to_do(genai_emulator: Emulator) -> None:
    client = genai.Client()
    with pytest.raises(genai.ConfigError, match=r"no diffusers model folder at /models/sdxl-turbo|pip install 'genai-sdk\[local\]'"):
        client.images.generate("a couch", model="diffusers:/models/sdxl-turbo")
    with pytest.raises(genai.ConfigError, match="no video model is configured: pass model=..., set video"):
        client.videos.generate("a panda")


def test_default_image_model_is_the_recommended_one(genai_emulator: Emulator) -> None:
    client = genai.Client()
    result = client.images.generate("a couch")
    assert result.model == "openai:gpt-image-1.5"


def test_future_retirement_is_a_warning(client: genai.Client, genai_emulator: Emulator) -> None:
    mini = client.catalog.get("openai:gpt-image-1-mini")
    assert mini is not None
    client.catalog.register(replace(mini, retired_on=date(2999, 1, 1), replacement="openai:gpt-image-2"))
    result = client.images.generate("a couch", model="openai:gpt-image-1-mini")
    assert "openai:gpt-image-1-mini will be retired on 2999-01-01; use openai:gpt-image-2 instead" in result.warnings


def test_estimate_makes_no_call_and_needs_no_key() -> None:
    client = genai.Client(image="openai:dall-e-2")
    cost = client.images.estimate("an avocado couch", n=4, size="512x512")
    assert cost.usd == genai.Cost(cost.credits, cost.usd).usd
    assert str(cost.usd) == "0.072" and cost.estimated
    assert client.credits.history() == []


@pytest.mark.parametrize(
    ("blocked", "call", "extra"),
    [
        ("openai", "c.images.generate('a couch', model='openai:dall-e-2')", "openai"),
        ("faster_whisper", "c.speech.transcribe(b'RIFF')", "speech"),
        ("piper", "c.speech.synthesize('hi')", "speech"),
        ("diffusers", "c.images.generate('a couch', model='diffusers:/tmp')", "local"),
        ("httpx", "c.images.generate('a couch', model='replicate:black-forest-labs/flux-schnell')", "replicate"),
    ],
)
def test_a_missing_extra_names_the_pip_command(blocked: str, call: str, extra: str) -> None:
    import subprocess
    import sys

    code = (
        f"import sys; sys.modules[{blocked!r}] = None\n"
        "import os; os.environ['OPENAI_API_KEY'] = 'sk-test-key-000000'\n"
        "import genai_sdk as genai\n"
        "c = genai.Client(ledger='memory://')\n"
        "try:\n"
        f"    {call}\n"
        "except genai.ConfigError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert f"pip install 'genai-sdk[{extra}]'" in out.stdout, out.stdout + out.stderr
