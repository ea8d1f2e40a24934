"""The flags every generation command takes (provider options, seed, steps, guidance, negative prompt, account,
timeout, estimate), checked against what the emulator received over HTTP; the parser's own hygiene (help on every
flag, shell completion made from it); and the one-line errors of ``models`` and ``emulator``."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

import genai_sdk as genai
from genai_sdk.cli import build_parser, main, parse_options
from genai_sdk.testing import Emulator

WAN = "replicate:wan-video/wan-2.2-t2v-fast"


def test_options_reach_the_models_provider_parsed_as_json(genai_emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["image", "a fox", "--model", "openai:gpt-image-1.5", "--size", "1024x1024", "-o", "fox.png",
            "--option", "background=opaque", "--option", "output_compression=80", "--option", "openai:user=ann"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    sent = genai_emulator.calls("images.generate")[-1].json
    assert (sent["background"], sent["output_compression"], sent["user"]) == ("opaque", 80, "ann")


def test_options_without_a_model_go_to_the_configured_models_providers(
    genai_emulator: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENAI_IMAGE", "openai:dall-e-2")
    assert main(["image", "a fox", "--size", "256x256", "-o", "fox.png", "--option", "user=ann"]) == 0, capsys.readouterr().err
    assert genai_emulator.calls("images.generate")[-1].json["user"] == "ann"


def test_parse_options() -> None:
    assert parse_options(["a=1", "b=true", "c=[1, 2]", 'd={"x": null}', "e=text", "f=", "g=NaN", "p:h=1.5"]) == [
        (None, "a", 1), (None, "b", True), (None, "c", [1, 2]), (None, "d", {"x": None}), (None, "e", "text"),
        (None, "f", ""), (None, "g", "NaN"), ("p", "h", 1.5),
    ]  # fmt: skip
    for bad in ("background", "=opaque", ":x=1", "openai:=1"):
        with pytest.raises(genai.InvalidRequestError, match="write KEY=VALUE"):
            parse_options([bad])


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("background", "--option 'background': write KEY=VALUE or PROVIDER:KEY=VALUE"),
        ("=opaque", "--option '=opaque': write KEY=VALUE"),
        ("colour=red", "colour"),  # the provider's own check: an option it does not have
        ("nope:x=1", "nope"),  # not a provider
    ],
)
def test_bad_options_are_refused_before_sending(
    genai_emulator: Emulator, capsys: pytest.CaptureFixture[str], option: str, message: str
) -> None:
    assert main(["image", "a fox", "--model", "openai:dall-e-2", "-o", "x.png", "--option", option]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.splitlines()) == 1, err
    assert not genai_emulator.requests and not Path("x.png").exists()


def test_generation_flags_reach_the_backend(genai_emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["video", "a panda", "--model", WAN, "--seconds", "2", "--fps", "16", "--seed", "3", "--negative-prompt", "blur",
            "--guidance", "4.5", "--account", "bob", "--timeout", "60", "-o", "panda.mp4"]  # fmt: skip
    assert main(args) == 0
    sent = genai_emulator.calls("replicate.predictions.create")[-1].json["input"]
    assert (sent["seed"], sent["negative_prompt"]) == (3, "blur")
    assert "has no guidance input: guidance=4.5 was not applied" in capsys.readouterr().err  # said, never dropped
    assert main(["image", "a fox", "--model", "replicate:black-forest-labs/flux-schnell", "--steps", "4", "--seed", "9",
                 "-o", "fox.png"]) == 0  # fmt: skip
    sent = genai_emulator.calls("replicate.predictions.create")[-1].json["input"]
    assert (sent["num_inference_steps"], sent["seed"]) == (4, 9)
    capsys.readouterr()
    assert main(["image", "a fox", "--model", "openai:dall-e-2", "--timeout", "0", "-o", "x.png"]) == 2
    assert "timeout=0.0" in capsys.readouterr().err


def test_the_account_flag_charges_that_account(genai_emulator: Emulator, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:  # fmt: skip
    monkeypatch.setenv("GENAI_LEDGER", f"sqlite:///{tmp_path / 'ledger.db'}")
    assert main(["image", "a fox", "--model", "openai:dall-e-2", "--size", "256x256", "--account", "bob", "-o", "x.png"]) == 0
    capsys.readouterr()
    assert main(["credits", "history", "--account", "bob", "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["kind"], row["credits"], row["model"]) == ("charge", "-1.6", "openai:dall-e-2")


def _wav(path: Path, seconds: float = 2.0) -> None:
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(16000)
        writer.writeframes(b"\0\0" * int(16000 * seconds))


@pytest.mark.parametrize(
    ("args", "price"),
    [
        (["image", "a fox", "--model", "openai:dall-e-2", "-n", "3", "--size", "256x256"], "4.8000 credits ($0.048, estimated)"),
        (["variations", "in.png", "--model", "openai:dall-e-2", "-n", "2", "--size", "512x512", "-o", "-"],
         "3.6000 credits ($0.036, estimated)"),
        (["edit", "in.png", "-p", "a hat", "--model", "openai:dall-e-2", "--size", "256x256"], "1.6000 credits ($0.016, estimated)"),
        (["video", "a panda", "--model", WAN, "--seconds", "2"], "credits (unpriced, estimated)"),
        (["speak", "Hello there.", "--model", "openai:tts-1", "-o", "-"], "credits ($0.000"),
        (["transcribe", "talk.wav", "--model", "openai:whisper-1"], "credits ($0.000"),
        (["image", "--prompts-file", "prompts.txt", "--model", "openai:dall-e-2", "--size", "256x256"],
         "3.2000 credits ($0.032, estimated)"),
    ],
)  # fmt: skip
def test_estimate_prints_the_price_and_sends_nothing(
    genai_emulator: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], price: str
) -> None:
    from PIL import Image as PILImage

    PILImage.new("RGB", (64, 64)).save(tmp_path / "in.png")
    _wav(tmp_path / "talk.wav")
    (tmp_path / "prompts.txt").write_text("a fox\na hen\n", encoding="utf-8")
    assert main([*args, "--estimate"]) == 0
    out = capsys.readouterr().out
    assert price in out and out.count("\n") == 1, out
    assert not genai_emulator.requests, "an estimate sends nothing"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "prompts.txt", "talk.wav"], "and writes nothing"
    assert main(["credits", "history", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [], "and charges nothing"


def test_estimate_as_json(genai_emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["image", "a fox", "--model", "openai:dall-e-2", "--size", "256x256", "--estimate", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"type": "Cost", "credits": "1.6000", "usd": "0.016", "estimated": True}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["image", "a fox", "--format", "png"], "--format applies to -o -"),
        (["image", "a fox", "-o", "-", "--json"], "--json and -o - both write to standard output"),
        (["image", "--prompts-file", "p.txt", "-o", "-"], "--prompts-file makes one per prompt"),
        (["edit", "-", "-p", "x", "--mask", "-"], "only one input can be -"),
        (["transcribe", "-", "other.wav"], "give it alone"),
        (["models", "--provider", "nope"], "unknown provider 'nope': the known providers are clip, diffusers, google, openai, piper, replicate, stability, whisper"),
    ],
)
def test_flag_combinations_that_cannot_work_are_one_line_errors(
    genai_emulator: Emulator, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("genai: ") and message in err and err.count("\n") == 1, err
    assert not genai_emulator.requests


@pytest.mark.parametrize(
    "args", [["speak", "hi", "-o", "x.wav", "--seed", "1"], ["models", "--estimate"], ["image", "x", "--option"]]
)
def test_flags_a_command_does_not_take_are_usage_errors(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    assert "usage: genai" in capsys.readouterr().err


def _parsers(parser: argparse.ArgumentParser, path: str = "genai") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def test_every_flag_and_command_has_help() -> None:
    missing = [
        f"{path}: {action.option_strings or action.dest}"
        for path, parser in _parsers(build_parser())
        for action in parser._actions
        if not (action.help or "").strip()
    ]
    missing += [
        f"{path} {choice.dest}"
        for path, parser in _parsers(build_parser())
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for choice in action._choices_actions
        if not (choice.help or "").strip()
    ]
    assert missing == []


def test_models_of_an_unknown_provider_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--provider", "openai"]) == 0
    out = capsys.readouterr().out
    assert "openai:dall-e-2" in out and "replicate:" not in out


def test_emulator_on_a_busy_port_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ}
        env.pop("PYTHONWARNINGS", None)
        done = subprocess.run([sys.executable, "-m", "genai_sdk.cli", "emulator", "--port", str(port)], env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"genai: port {port} on 127.0.0.1 is already in use: choose another with --port (--port 0 picks a free one)"
    ]


def _complete(script: str, line: str) -> list[str]:
    """What bash offers for the command line ``line`` (a trailing space: a new, empty word)."""
    program = (
        f'{script}\nread -ra COMP_WORDS <<< "$LINE"; [[ "$LINE" == *" " ]] && COMP_WORDS+=("")\n'
        'COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _genai; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run(["bash", "--norc", "-c", program], env={"LINE": line, "PATH": os.environ["PATH"]},
                          capture_output=True, text=True, check=True, timeout=30)  # fmt: skip
    return [word for word in done.stdout.splitlines() if word]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_offers_commands_flags_and_choices(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    assert _complete(script, "genai ") == [
        "image", "edit", "variations", "upscale", "sketch", "blend", "score", "classify", "video", "transcribe", "translate",
        "detect-language", "speak", "podcast", "jobs", "credits", "policy", "models", "emulator", "completion",
    ]  # fmt: skip
    assert _complete(script, "genai var") == ["variations"]
    assert _complete(script, "genai image --neg") == ["--negative-prompt"]
    assert "--estimate" in _complete(script, "genai speak hi --")
    assert _complete(script, "genai transcribe talk.wav --format ") == ["txt", "srt", "vtt", "json"]
    assert _complete(script, "genai credits history --format ") == ["table", "csv", "json"]
    assert _complete(script, "genai credits g") == ["grant"]
    assert _complete(script, "genai completion ") == ["bash", "zsh", "fish"]
    assert _complete(script, "genai --config x.toml image --fo") == ["--format"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_completion_name_every_command_and_flag(capsys: pytest.CaptureFixture[str], shell: str) -> None:
    assert main(["completion", shell]) == 0
    script = capsys.readouterr().out
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            for flag in action.option_strings:
                assert (f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}") in script if shell == "fish" \
                    else f" {flag}" in script, (path, flag)  # fmt: skip
    assert "variations" in script and "completion" in script
    if shutil.which(shell):  # the shell itself reads it without a syntax error
        subprocess.run([shell, "-n"], input=script, text=True, check=True, timeout=30)


def test_models_pull_brings_a_local_model_into_place_and_refuses_hosted_ones(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("faster_whisper", reason="local Whisper needs the 'speech' extra")
    assert main(["models", "pull", "whisper:tiny.en"]) == 0, capsys.readouterr().err
    folder = Path(capsys.readouterr().out.split(": ", 1)[1].strip())
    assert (folder / "model.bin").is_file()
    assert main(["models", "pull", "openai:dall-e-3"]) == 2
    assert "hosted models need no download" in capsys.readouterr().err
    assert main(["models", "pull"]) == 2 and "needs a model" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("fish") is None, reason="needs the fish shell")
def test_fish_completes_commands_and_flags_from_the_script(tmp_path: Path) -> None:
    from genai_sdk.cli._completion import fish_completion

    script = tmp_path / "genai.fish"
    script.write_text(fish_completion(build_parser()), encoding="utf-8")
    asked = f"source {script}; complete -C 'genai spe'; complete -C 'genai speak --fo'"
    done = subprocess.run(["fish", "-c", asked], capture_output=True, text=True, timeout=60, check=True)
    offered = [line.split("\t")[0] for line in done.stdout.splitlines()]
    assert "speak" in offered and "--format" in offered
