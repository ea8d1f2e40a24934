import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import genai_sdk as genai
from genai_sdk._progress import ProgressBar
from genai_sdk.cli import main, output_paths
from genai_sdk.testing import Emulator


def test_models_lists_capabilities_prices_and_retirements(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "openai:gpt-image-1.5" in out and "recommended" in out
    assert "openai:dall-e-3" in out and "retired 2026-05-12 -> openai:gpt-image-1.5" in out
    assert "0.016-0.020/image" in out and "unpriced" in out
    assert "replicate:black-forest-labs/flux-schnell" in out and "replicate:deployments/owner/name" in out


def test_models_json(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["models", "--json"]) == 0
    rows = {row["model"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["openai:dall-e-2"]["prices_usd"]["*@512x512"] == "0.018"
    assert rows["openai:gpt-image-1"]["retired_on"] == "2026-10-23"


def test_image_writes_files_from_a_pattern(genai_emulator: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["image", "a red fox", "-n", "3", "--size", "256x256", "--model", "openai:dall-e-2", "-o", "out/{slug}-{i}.jpg"])
    assert code == 2  # the folder does not exist yet
    assert "folder out does not exist" in capsys.readouterr().err
    (tmp_path / "out").mkdir()
    assert main(["image", "a red fox", "-n", "3", "--size", "256x256", "--model", "openai:dall-e-2", "-o", "out/{slug}-{i}.jpg"]) == 0
    captured = capsys.readouterr()
    assert captured.out.split() == [f"out/a_red_fox-{i}.jpg" for i in range(3)]
    assert "cost: 4.8000 credits ($0.048)" in captured.err
    for i in range(3):
        image = genai.Image.from_path(tmp_path / "out" / f"a_red_fox-{i}.jpg")
        assert image.media_type == "image/jpeg" and image.size == (256, 256)
        assert image.provenance["model"] == "openai:dall-e-2"


def test_image_errors_exit_with_a_message(genai_emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["image", "x", "--size", "640x480", "--model", "openai:dall-e-2"]) == 2
    assert "size='640x480' is not available" in capsys.readouterr().err
    genai_emulator.fail("images.generate", "unauthorized")
    assert main(["image", "x", "--model", "openai:dall-e-2"]) == 1
    assert "AuthenticationError" in capsys.readouterr().err


def test_edit_command(genai_emulator: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from PIL import Image as PILImage

    PILImage.new("RGB", (64, 64)).save(tmp_path / "in.png")
    assert main(["edit", "in.png", "-p", "add a hat", "--model", "openai:dall-e-2", "--size", "256x256", "-o", "hat.png"]) == 0
    assert capsys.readouterr().out.split() == ["hat.png"]
    assert genai.Image.from_path(tmp_path / "hat.png").size == (256, 256)


def test_output_paths() -> None:
    assert output_paths("pic.png", 2, "A cat!", "openai:dall-e-2") == [Path("pic0.png"), Path("pic1.png")]
    assert output_paths("pic.png", 1, "A cat!", "m") == [Path("pic.png")]
    assert output_paths("{model}/{slug}_{i}of{n}.png", 1, "A cat!", "openai:dall-e-2") == [Path("openai_dall_e_2/a_cat_0of1.png")]
    with pytest.raises(genai.InvalidRequestError, match="use only"):
        output_paths("{name}.png", 1, "x", "m")


def test_progress_bar_draws_only_on_a_terminal() -> None:
    stream = io.StringIO()
    ProgressBar("image", stream)(genai.Progress("generating", 1, 2))
    assert stream.getvalue() == ""
    ProgressBar("image", stream, force=True)(genai.Progress("generating", 1, 2))
    assert "[" + "#" * 15 + "-" * 15 + "] 1/2 generating" in stream.getvalue()


def test_emulator_command_serves_until_interrupted(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "genai_sdk.cli", "emulator", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        env: dict[str, str] = {}
        while not {"OPENAI_BASE_URL", "OPENAI_API_KEY"} <= set(env) and len(env) < 20:  # one line per variable
            name, _, value = process.stdout.readline().strip().removeprefix("export ").partition("=")
            env[name] = value
        client = genai.Client(image="openai:dall-e-2")
        os.environ.update(env)
        try:
            assert client.images.generate("a couch", size="256x256").image.size == (256, 256)
        finally:
            for key in env:
                os.environ.pop(key)
    finally:
        process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 10
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("genai")
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True).stdout
    assert "image" in out and "models" in out and "emulator" in out


def test_speak_and_transcribe_with_the_openai_backend(genai_emulator: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("av", reason="audio needs PyAV, which the 'openai' extra installs")
    from .speech_helpers import parse_srt, parse_vtt

    assert main(["speak", "Testing the command line.", "-o", "said.wav", "--model", "openai:tts-1", "--voice", "echo"]) == 0
    assert capsys.readouterr().out.strip() == "said.wav"
    assert genai_emulator.calls("audio.speech")[0].json["voice"] == "echo"
    for fmt, check in [("txt", lambda out: out.strip() == "Testing the command line."),
                       ("srt", lambda out: parse_srt(out)[0][2] == "Testing the command line."),
                       ("vtt", lambda out: parse_vtt(out)[0][2] == "Testing the command line."),
                       ("json", lambda out: __import__("json").loads(out)["text"] == "Testing the command line.")]:
        assert main(["transcribe", "said.wav", "--model", "openai:whisper-1", "--format", fmt]) == 0
        out = capsys.readouterr().out
        assert check(out), (fmt, out)
    assert main(["translate", "said.wav", "--model", "openai:whisper-1", "-o", "said.srt", "--format", "srt"]) == 0
    assert parse_srt((tmp_path / "said.srt").read_text(encoding="utf-8"))[0][2] == "Testing the command line."
    assert main(["detect-language", "said.wav", "--model", "openai:whisper-1"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "en"  # whisper-1 names the language, without a probability
    assert main(["transcribe", "missing.wav", "--model", "openai:whisper-1"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_speak_picks_the_format_from_the_extension(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("piper", reason="local speech needs the 'local' extra")
    assert main(["speak", "An M P 3 file.", "-o", "out.mp3"]) == 0
    assert genai.Audio.from_path(tmp_path / "out.mp3").media_type == "audio/mpeg"
    assert "s of audio" in capsys.readouterr().err


def test_credits_commands(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import csv
    import io
    import json

    assert main(["credits", "grant", "100", "--reason", "welcome", "--account", "ann"]) == 0
    assert "granted 100; balance 100" in capsys.readouterr().out
    assert main(["credits", "budget", "--credits", "30", "--period", "day", "--account", "ann"]) == 0
    assert capsys.readouterr().out.strip() == "budget: 30 credits a day"
    from genai_sdk.credits import default_ledger_url, open_ledger

    ledger = open_ledger(default_ledger_url())  # the same default ledger, opened on its own
    with pytest.raises(genai.BudgetExceededError):
        ledger.reserve("ann", __import__("decimal").Decimal(31), None, "r", "m")
    ledger.close()
    assert main(["credits", "grant", "5", "--expires", "2099-01-31", "--account", "ann"]) == 0
    capsys.readouterr()
    assert main(["credits", "balance", "--account", "ann"]) == 0
    assert capsys.readouterr().out.strip() == "105"
    assert main(["credits", "history", "--account", "ann"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["time", "kind", "credits", "usd", "model", "reason"] and len(table) == 4
    assert main(["credits", "history", "--account", "ann", "--format", "csv", "-o", "h.csv"]) == 0
    assert capsys.readouterr().out.strip() == "h.csv"
    rows = list(csv.DictReader(io.StringIO((tmp_path / "h.csv").read_text(encoding="utf-8"))))
    assert [(r["kind"], r["credits"], r["reason"]) for r in rows] == [("grant", "100", "welcome"), ("grant", "5", "grant")]
    assert rows[1]["expires"].startswith("2099-01-31")
    assert main(["credits", "history", "--account", "ann", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["reason"] == "welcome"
    assert main(["credits", "budget", "--account", "ann"]) == 0  # no flags: a list, never a removal
    assert capsys.readouterr().out.strip() == "budget: 30 credits a day"
    assert main(["credits", "budget", "--account", "ann", "--period", "day", "--clear"]) == 0
    assert capsys.readouterr().out.strip() == "no daily budget"
    assert main(["credits", "budget", "--account", "ann"]) == 0
    assert capsys.readouterr().out.strip() == "no budget"
    assert main(["credits", "grant", "lots"]) == 2
    assert main(["credits", "grant", "1", "--expires", "soon"]) == 2
    assert "give a date" in capsys.readouterr().err


def test_credits_buy_with_the_dalle_plan(capsys: pytest.CaptureFixture[str]) -> None:
    import os

    os.environ["GENAI_PLAN"] = "dalle"
    try:
        assert main(["credits", "buy", "--packs", "2"]) == 0
        assert "bought 230 credits for 30 USD; balance 280" in capsys.readouterr().out  # 50 free this month
    finally:
        del os.environ["GENAI_PLAN"]
