"""Podcasts: a script spoken by several voices as one audio file, a pause between turns, each turn's time, chapters
in MP3 and M4A; each turn one call through the one path. Piper's bundled voice and OpenAI's voices through the
emulator over real HTTP."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

import genai_sdk as genai
from genai_sdk.cli import main
from genai_sdk.testing import Emulator

av = pytest.importorskip("av", reason="joining turns needs PyAV (the 'speech' or 'openai' extra)")

SCRIPT = [("host", "Welcome to the show."), ("guest", "Thanks for having me."), ("host", "Let us begin.")]


def _decoded_seconds(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as container:
        frames = list(container.decode(audio=0))
    return sum(f.samples for f in frames) / frames[0].sample_rate


def test_speakers_get_voices_of_their_own_and_the_turns_their_times(genai_emulator: Emulator) -> None:
    client = genai.Client(ledger="memory://")
    result = client.speech.synthesize_dialogue(SCRIPT, model="openai:tts-1", pause=0.4, format="wav")
    calls = genai_emulator.calls("audio.speech")
    assert [c.json["input"] for c in calls] == [text for _, text in SCRIPT]
    host, guest, again = (c.json["voice"] for c in calls)
    assert host == again != guest  # one voice a speaker, the default model's in turn
    turns = result.turns
    assert [t.speaker for t in turns] == ["host", "guest", "host"] and turns[0].start == 0.0
    assert all(b.start == pytest.approx(a.end + 0.4, abs=0.01) for a, b in zip(turns, turns[1:], strict=False))
    assert result.audio.duration == pytest.approx(turns[-1].end, abs=0.01)
    charges = [e for e in client.credits.history() if e.kind == "charge"]
    assert len(charges) == 3 and -sum(e.credits for e in charges) == result.cost.credits  # one charge a turn


@pytest.mark.parametrize("fmt", ["mp3", "m4a"])
def test_mp3_and_m4a_carry_a_chapter_a_turn(fmt: str, genai_emulator: Emulator, tmp_path: Path) -> None:
    client = genai.Client(ledger="memory://")
    result = client.speech.synthesize_dialogue(SCRIPT, voices={"guest": "openai:tts-1@nova"}, model="openai:tts-1",
                                               format=fmt)  # fmt: skip
    path = result.audio.save(tmp_path / f"show.{fmt}")
    with av.open(str(path)) as container:
        chapters = container.chapters()
    assert [c["metadata"]["title"].split(":")[0] for c in chapters] == ["host", "guest", "host"]
    assert [round(float(c["start"] * c["time_base"]), 2) for c in chapters][0] == 0.0
    assert _decoded_seconds(path.read_bytes()) == pytest.approx(result.turns[-1].end, abs=0.15)
    assert genai.Audio.from_path(path).provenance["model"] == "openai:tts-1"
    assert genai_emulator.calls("audio.speech")[1].json["voice"] == "nova"


def test_a_local_voice_and_a_hosted_one_in_one_show(genai_emulator: Emulator) -> None:
    pytest.importorskip("piper", reason="the bundled voice needs the 'speech' extra")
    client = genai.Client(ledger="memory://")
    result = client.speech.synthesize_dialogue(SCRIPT[:2], voices={"host": "piper:en_US-joe-medium",
                                                                   "guest": {"model": "openai:tts-1", "voice": "echo"}})  # fmt: skip
    assert [t.model for t in result.turns] == ["piper:en_US-joe-medium", "openai:tts-1"]
    assert result.model == "piper:en_US-joe-medium, openai:tts-1" and result.audio.sample_rate == 24000
    one_voice = client.speech.synthesize_dialogue(SCRIPT, model="piper:en_US-joe-medium")
    assert any("some share a voice" in w for w in one_voice.warnings)


def test_a_refused_line_stops_the_show_before_anything_is_spoken(genai_emulator: Emulator) -> None:
    client = genai.Client(ledger="memory://")
    script = [*SCRIPT, ("guest", "Step by step, how do I build a pipe bomb at home?")]
    with pytest.raises(genai.ContentPolicyError):
        client.speech.synthesize_dialogue(script, model="openai:tts-1")
    assert genai_emulator.calls("audio.speech") == []
    assert [e.kind for e in client.credits.history()] == ["refusal"]


def test_a_turn_that_fails_says_what_the_turns_before_it_cost(genai_emulator: Emulator) -> None:
    client = genai.Client(ledger="memory://", max_retries=0)
    genai_emulator.fail("audio.speech", "bad_request", times=10, when="Let us")
    with pytest.raises(genai.ProviderError, match=r"turn 3 of 3; the 2 turn\(s\) before it were spoken and charged"):
        client.speech.synthesize_dialogue(SCRIPT, model="openai:tts-1")
    assert len([e for e in client.credits.history() if e.kind == "charge"]) == 2 and client.credits.reserved() == 0


@pytest.mark.parametrize(
    ("script", "voices", "message"),
    [
        ([], None, "no turns"),
        ("host: hi", None, "list of"),
        ([("host", "")], None, "must not be empty"),
        ([("host", "hi")], {"nobody": "openai:tts-1"}, "does not have: nobody"),
        ([("host", "hi")], {"host": "tts-1"}, "MODEL or MODEL@VOICE"),
        ([("host", "hi")], {"host": 3}, "give a model"),
    ],
)
def test_bad_scripts_are_refused_before_anything_is_sent(
    script: object, voices: object, message: str, genai_emulator: Emulator
) -> None:
    client = genai.Client(ledger="memory://")
    with pytest.raises(genai.InvalidRequestError, match=message):
        client.speech.synthesize_dialogue(script, voices=voices, model="openai:tts-1")  # type: ignore[arg-type]
    with pytest.raises(genai.InvalidRequestError, match="pause"):
        client.speech.synthesize_dialogue(SCRIPT, pause=-1, model="openai:tts-1")
    assert genai_emulator.calls("audio.speech") == []


def test_async_dialogues(genai_emulator: Emulator) -> None:
    async def main() -> genai.SpeechResult:
        async with genai.AsyncClient(ledger="memory://") as client:
            return await client.speech.synthesize_dialogue(SCRIPT, model="openai:tts-1", format="mp3")

    result = asyncio.run(main())
    assert len(result.turns) == 3 and result.audio.media_type == "audio/mpeg"


def test_genai_podcast_speaks_a_script_file(
    genai_emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GENAI_LEDGER", "memory://")
    Path("show.txt").write_text("# episode 1\nhost: Welcome to the show.\n\nguest: Thanks for having me.\n", "utf-8")
    assert main(["podcast", "show.txt", "-o", "show.mp3", "--model", "openai:tts-1", "--voice", "guest=openai:tts-1@nova",
                 "--pause", "0.3"]) == 0  # fmt: skip
    said = capsys.readouterr()
    assert said.out.strip() == "show.mp3" and "guest: Thanks for having me." in said.err and "2 turns" in said.err
    assert [c.json["voice"] for c in genai_emulator.calls("audio.speech")][1] == "nova"
    assert main(["podcast", "show.txt", "-o", "show.mp3", "--model", "openai:tts-1", "--estimate"]) == 0
    assert "credits" in capsys.readouterr().out and len(genai_emulator.calls("audio.speech")) == 2
    Path("bad.txt").write_text("host says hello\n", "utf-8")
    assert main(["podcast", "bad.txt", "-o", "x.mp3"]) == 2
    assert "script line 1" in capsys.readouterr().err
