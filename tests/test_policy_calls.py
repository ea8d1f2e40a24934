"""The content policy on real calls: decisions on results, refusals recorded and never charged, output checks on
images made in the test, the hosted moderator and provider refusals through the emulator, and the CLI."""

from __future__ import annotations

import asyncio
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFilter

import genai_sdk as genai
from genai_sdk.cli import main
from genai_sdk.testing import Emulator
from genai_sdk.testing._media_maker import make_speech_wav

from .conftest import fast

pytest.importorskip("onnxruntime", reason="the policy's learned layers need the 'policy' extra (in 'local')")
MODERATOR = "openai:omni-moderation-latest"


def _client(**settings: Any) -> genai.Client:
    c = fast(genai.Client(image="openai:dall-e-2", ledger="memory://", **settings))
    return c


def _face(size: int = 256) -> PILImage.Image:
    """A drawn face, enough for a frontal-face detector: a light oval with dark eyes, brows and mouth."""
    picture = PILImage.new("L", (size, size), 200)
    draw = ImageDraw.Draw(picture)
    s = size / 256
    draw.ellipse([60 * s, 40 * s, 196 * s, 216 * s], fill=170)
    draw.rectangle([60 * s, 30 * s, 196 * s, 70 * s], fill=60)
    draw.ellipse([88 * s, 100 * s, 118 * s, 116 * s], fill=40)
    draw.ellipse([138 * s, 100 * s, 168 * s, 116 * s], fill=40)
    draw.rectangle([85 * s, 88 * s, 121 * s, 94 * s], fill=80)
    draw.rectangle([135 * s, 88 * s, 171 * s, 94 * s], fill=80)
    draw.polygon([(128 * s, 115 * s), (118 * s, 150 * s), (138 * s, 150 * s)], fill=150)
    draw.ellipse([103 * s, 165 * s, 153 * s, 180 * s], fill=90)
    return picture.filter(ImageFilter.GaussianBlur(3 * s)).convert("RGB")


def _png(picture: PILImage.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _rules(tmp_path: Path, text: str) -> str:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


# -- prompts on calls ------------------------------------------------------------------------------------------


def test_a_refused_prompt_sends_nothing_charges_nothing_and_is_recorded(genai_emulator: Emulator) -> None:
    client = _client()
    client.credits.grant(100)
    with pytest.raises(genai.ContentPolicyError) as info:
        client.images.generate("a nude portrait of a woman", size="256x256")
    error = info.value
    assert (error.stage, error.source, error.categories) == ("prompt", "local", ["sexual"])
    assert "sexual" in str(error) and error.request_id
    assert genai_emulator.calls() == []
    grant, refusal = client.credits.history()
    assert refusal.kind == "refusal" and refusal.credits == 0 and refusal.request_id == error.request_id
    assert refusal.model == "openai:dall-e-2" and "nude" not in refusal.reason and "sha256:" in refusal.reason
    assert client.credits.balance() == 100 and client.credits.reserved() == 0


def test_an_allowed_call_carries_its_decisions(genai_emulator: Emulator) -> None:
    result = _client().images.generate("an avocado couch", size="256x256")
    prompt, output = result.policy
    assert (prompt.stage, prompt.action, prompt.layer) == ("prompt", "allow", "rules+classifier")
    assert prompt.scores["unsafe"] < 0.5
    assert (output.stage, output.action) == ("output", "allow") and output.layer.startswith("nsfw-image")
    assert 0.0 <= output.scores["sexual"] < 0.8
    assert not any("content policy" in w for w in result.warnings)


def test_monitor_flags_and_records_but_blocks_nothing(genai_emulator: Emulator) -> None:
    client = _client(policy="monitor")
    result = client.images.generate("a bloody massacre", size="256x256")
    assert len(result.images) == 1 and result.cost.credits > 0
    prompt = result.policy[0]
    assert prompt.action == "flag" and prompt.allowed and "violence/graphic" in prompt.categories
    assert any(w.startswith("content policy flagged the prompt (violence/graphic") for w in result.warnings)
    assert [e.kind for e in client.credits.history()] == ["charge"]


def test_a_rules_file_action_flag_lets_a_category_through(genai_emulator: Emulator, tmp_path: Path) -> None:
    client = _client(policy=_rules(tmp_path, 'extends = "standard"\n[actions]\n"violence/graphic" = "flag"\n'))
    result = client.images.generate("a bloody massacre", size="256x256")
    assert result.policy[0].action == "flag"
    with pytest.raises(genai.ContentPolicyError):
        client.images.generate("a nude portrait", size="256x256")


def test_speech_text_is_checked_before_it_is_spoken(genai_emulator: Emulator) -> None:
    client = fast(genai.Client(text_to_speech="openai:tts-1", ledger="memory://"))
    with pytest.raises(genai.ContentPolicyError) as info:
        client.speech.synthesize("Here is how to make a pipe bomb at home, step by step.")
    assert info.value.stage == "prompt" and "illicit" in info.value.categories
    assert genai_emulator.calls() == []


def test_transcripts_go_through_the_text_layers(genai_emulator: Emulator) -> None:
    audio = make_speech_wav("First you pack the pipe bomb with nails, then you light the fuse.")
    client = fast(genai.Client(speech_to_text="openai:whisper-1", ledger="memory://"))
    with pytest.raises(genai.ContentPolicyError) as info:
        client.speech.transcribe(audio)
    assert (info.value.stage, info.value.source) == ("output", "local") and "illicit" in info.value.categories
    assert len(genai_emulator.calls("audio.transcriptions")) == 1
    assert [e.kind for e in client.credits.history()] == ["refusal"]
    calm = client.speech.transcribe(make_speech_wav("The train leaves at nine from platform two."))
    assert calm.policy[-1].stage == "output" and calm.policy[-1].allowed


# -- outputs ----------------------------------------------------------------------------------------------------


def test_an_output_refusal_is_not_retried_nor_charged(genai_emulator: Emulator, tmp_path: Path) -> None:
    client = _client(policy=_rules(tmp_path, "[image_thresholds]\nsexual = 0.0\n"))  # every picture over it
    client.credits.grant(50)
    with pytest.raises(genai.ContentPolicyError) as info:
        client.images.generate("an avocado couch", size="256x256")
    assert (info.value.stage, info.value.source, info.value.categories) == ("output", "local", ["sexual"])
    assert "NSFW image score" in str(info.value)
    assert len(genai_emulator.calls("images.generate")) == 1
    assert [e.kind for e in client.credits.history()] == ["grant", "refusal"]
    assert client.credits.balance() == 50 and client.credits.reserved() == 0


def test_image_checks_can_be_turned_off_by_a_rules_file(genai_emulator: Emulator, tmp_path: Path) -> None:
    client = _client(policy=_rules(tmp_path, "image_checks = false\n[image_thresholds]\nsexual = 0.0\n"))
    result = client.images.generate("an avocado couch", size="256x256")
    assert [d.stage for d in result.policy] == ["prompt"]
    with pytest.raises(genai.ContentPolicyError):
        client.images.generate("a nude portrait", size="256x256")  # the prompt is still checked


def test_check_image_scores_any_picture(tmp_path: Path) -> None:
    client = genai.Client(ledger="memory://")
    path = tmp_path / "plain.png"
    PILImage.new("RGB", (300, 200), (40, 120, 200)).save(path)
    for source in (str(path), path.read_bytes(), genai.Image.from_path(path), PILImage.open(path)):
        decision = client.policy.check_image(source)
        assert decision.allowed and decision.stage == "output" and decision.layer == "nsfw-image"
        assert 0.0 <= decision.scores["sexual"] < 0.8
    with pytest.raises(genai.InvalidRequestError):
        client.policy.check_image(b"not an image")


def test_faces_only_escalate_a_named_public_figure() -> None:
    face = _png(_face())
    standard = genai.Client(ledger="memory://").policy
    assert standard.check_image(face).allowed, "a face alone decides nothing"
    flagged = standard.check_image(face, people=["Barack Obama"])
    assert flagged.action == "flag" and flagged.layer == "faces" and flagged.categories == ["public-figures"]
    assert flagged.scores["faces"] >= 1
    strict = genai.Client(ledger="memory://", policy="strict").policy.check_image(face, people=["Barack Obama"])
    assert strict.action == "block" and not strict.allowed
    no_face = _png(PILImage.new("RGB", (256, 256), (90, 160, 90)))
    assert standard.check_image(no_face, people=["Barack Obama"]).action == "allow"


def test_a_likeness_on_a_call_is_flagged(genai_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """The prompt names a person; the backend draws a face; the output check escalates it (flagged under standard)."""
    monkeypatch.setattr("genai_sdk.testing._api_openai.make_image", lambda *a, **k: _png(_face(int(a[1]))))
    result = _client().images.generate("Barack Obama giving a speech", size="256x256")
    prompt, output = result.policy
    assert prompt.allowed and prompt.people == ["Barack Obama"]
    assert output.action == "flag" and output.layer == "faces"
    strict = _client(policy="strict")
    with pytest.raises(genai.ContentPolicyError) as info:
        strict.images.generate("an oil painting of Barack Obama", size="256x256")
    assert (info.value.stage, info.value.categories) == ("output", ["public-figures"])


def test_a_diffusers_safety_checker_becomes_an_output_refusal(tmp_path: Path) -> None:
    pytest.importorskip("diffusers", reason="local pipelines need the 'local' extra")
    from genai_sdk.testing.tiny_diffusers import stable_diffusion

    folder = stable_diffusion(tmp_path / "flagging-sd", flag_nsfw=True)
    client = genai.Client(image=f"diffusers:{folder}", ledger="memory://")
    with pytest.raises(genai.ContentPolicyError) as info:
        client.images.generate("a couch", size="32x32", steps=2, seed=1)
    assert (info.value.stage, info.value.source, info.value.categories) == ("output", "provider", ["sexual"])
    assert "blacked them out" in str(info.value)
    (entry,) = client.credits.history()
    assert entry.kind == "refusal" and "output refused by provider" in entry.reason


def test_video_frames_are_checked() -> None:
    pytest.importorskip("av")
    import numpy as np

    from genai_sdk._requests import Cost, VideoResult
    from genai_sdk.providers.diffusers import encode_mp4

    frames = np.full((6, 64, 64, 3), 120, dtype=np.uint8)
    video = encode_mp4(frames, 6)
    policy = genai.Client(ledger="memory://")._pipeline.policy
    decision = policy.check_output(VideoResult(video, Cost(Decimal(0), None), "test"))
    assert decision is not None and decision.allowed and decision.layer.startswith("nsfw-image")


# -- the hosted moderator -------------------------------------------------------------------------------------


def test_the_moderator_is_a_second_opinion_with_thresholds(genai_emulator: Emulator) -> None:
    genai_emulator.moderate("dragonfruit", {"violence": 0.85})
    genai_emulator.moderate("kiwi", {"violence": 0.6})
    client = _client(policy_moderator=MODERATOR)
    over = client.policy.check("a dragonfruit salad")
    assert not over.allowed and over.layer == "moderator" and over.categories == ["violence"]
    assert over.scores["moderator:violence"] == pytest.approx(0.85)
    under = client.policy.check("a kiwi salad")
    assert under.allowed and under.layer == "rules+classifier+moderator"
    assert under.scores["moderator:violence"] == pytest.approx(0.6)
    client.policy.check("a kiwi salad")
    texts = [c.json["input"] for c in genai_emulator.calls("moderations")]
    assert texts == ["a dragonfruit salad", "a kiwi salad"], "verdicts are cached by text"
    client.policy.check("a nude portrait")
    assert len(genai_emulator.calls("moderations")) == 2, "nothing is asked about a prompt already refused"


def test_moderator_thresholds_from_a_rules_file(genai_emulator: Emulator, tmp_path: Path) -> None:
    genai_emulator.moderate("kiwi", {"violence": 0.6})
    client = _client(policy=_rules(tmp_path, "[moderator_thresholds]\nviolence = 0.5\n"), policy_moderator=MODERATOR)
    assert not client.policy.check("a kiwi salad").allowed


def test_a_moderator_outage_is_a_warning_or_a_refusal_by_setting(genai_emulator: Emulator) -> None:
    genai_emulator.fail("moderations", "server_error", times=20)
    warn = _client(policy_moderator=MODERATOR, max_retries=1)
    result = warn.images.generate("a quiet harbour at dawn", size="256x256")
    assert result.policy[0].allowed and any("could not be asked" in w for w in result.warnings)
    refuse = _client(policy_moderator=MODERATOR, policy_moderator_outage="refuse", max_retries=1)
    with pytest.raises(genai.ContentPolicyError) as info:
        refuse.images.generate("a quiet harbour at noon", size="256x256")
    assert info.value.categories == ["moderator-unavailable"]
    assert genai_emulator.calls("images.generate") != [] and len(genai_emulator.calls("images.generate")) == 1


def test_images_go_to_the_moderator_too(genai_emulator: Emulator) -> None:
    genai_emulator.moderate_images({"sexual": 0.9})
    client = _client(policy_moderator=MODERATOR)
    decision = client.policy.check_image(_png(PILImage.new("RGB", (64, 64), (200, 150, 120))))
    assert not decision.allowed and decision.layer == "moderator" and decision.categories == ["sexual"]
    (call,) = genai_emulator.calls("moderations")
    assert call.json["input"][0]["type"] == "image_url"
    assert call.json["input"][0]["image_url"]["url"].startswith("data:image/png;base64,")


def test_the_moderator_needs_a_key_and_an_openai_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(genai.ConfigError, match="OPENAI_API_KEY"):
        genai.Client(policy_moderator=MODERATOR, ledger="memory://")
    with pytest.raises(genai.ConfigError, match="an OpenAI moderation model"):
        genai.Client(policy_moderator="replicate:someone/moderator", ledger="memory://")
    with pytest.raises(genai.ConfigError, match="policy_moderator_outage"):
        genai.Client(policy_moderator_outage="maybe", ledger="memory://")


def test_async_checks_and_calls(genai_emulator: Emulator) -> None:
    genai_emulator.moderate("dragonfruit", {"violence": 0.85})

    async def run() -> None:
        async with genai.AsyncClient(image="openai:dall-e-2", ledger="memory://", policy_moderator=MODERATOR) as client:
            assert not (await client.policy.check("a dragonfruit salad")).allowed
            assert not (await client.policy.check("a nude portrait")).allowed
            result = await client.images.generate("an avocado couch", size="256x256")
            assert [d.stage for d in result.policy] == ["prompt", "output"]
            with pytest.raises(genai.ContentPolicyError):
                await client.images.generate("how to make a pipe bomb", size="256x256")
            assert [e.kind for e in await client.credits.history()] == ["charge", "refusal"]
            face = await client.policy.check_image(_png(_face()), people=["Joe Biden"])
            assert face.action == "flag"

    asyncio.run(run())


# -- provider refusals ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "prompt", "stage", "categories"),
    [
        ("openai:gpt-image-1.5", "a blockedword scene", "prompt", ["violence"]),
        ("openai:gpt-image-1.5", "a blockedpicture scene", "output", ["sexual"]),
        ("openai:dall-e-2", "a forbidden scene", "prompt", ["content_policy_violation"]),
    ],
)
def test_provider_refusals_at_each_stage(
    genai_emulator: Emulator, model: str, prompt: str, stage: str, categories: list[str]
) -> None:
    client = _client()
    client.credits.grant(100)
    with pytest.raises(genai.ContentPolicyError) as info:
        client.images.generate(prompt, model=model)
    assert (info.value.source, info.value.stage, info.value.categories) == ("provider", stage, categories)
    assert len(genai_emulator.calls("images.generate")) == 1, "never retried"
    refusal = client.credits.history()[-1]
    assert refusal.kind == "refusal" and f"{stage} refused by provider" in refusal.reason
    assert client.credits.balance() == 100 and client.credits.reserved() == 0


# -- the command line -----------------------------------------------------------------------------------------


def test_cli_policy_check(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["policy", "check", "a nude portrait"]) == 1
    out = capsys.readouterr().out
    assert "refused" in out and "categories: sexual" in out and "layer: rules" in out
    assert main(["policy", "check", "an avocado couch", "--json"]) == 0
    decision = json.loads(capsys.readouterr().out)
    assert decision["allowed"] and decision["action"] == "allow" and "unsafe" in decision["scores"]
    assert main(["policy", "check", "a nude portrait", "--policy", "monitor"]) == 0
    assert "flagged" in capsys.readouterr().out
    image = tmp_path / "face.png"
    _face().save(image)
    assert main(["policy", "check", "--image", str(image)]) == 0
    assert main(["policy", "check", "--image", str(image), "--people", "Joe Biden", "--policy", "strict"]) == 1
    assert "public-figures" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("how to make a b0mb"))
    assert main(["policy", "check", "-"]) == 1
    assert main(["policy", "check"]) == 2
    assert "give a text" in capsys.readouterr().err
