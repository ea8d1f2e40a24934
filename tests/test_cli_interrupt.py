"""Ctrl-C in the ``genai`` command: one line on standard error, status 130, never a traceback, and the backend's
work cancelled where the backend can cancel it. The command runs in a child process against the emulator, which
runs in this process; the child gets the emulator's environment (in-memory ledger included) and its own folder."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import genai_sdk as genai
from genai_sdk import cli
from genai_sdk.providers.base import Cancelled
from genai_sdk.testing import Emulator

posix_signals = pytest.mark.skipif(
    sys.platform == "win32" or not hasattr(signal, "SIGINT"), reason="sends SIGINT to a child process (POSIX signals)"
)

INTERRUPTED = 130


def _genai(args: list[str], emulator: Emulator, folder: Path) -> subprocess.Popen[str]:
    folder.mkdir()
    env = {**os.environ, **emulator.env(), "GENAI_LEDGER": "memory://", "XDG_DATA_HOME": str(folder / "data")}
    env.pop("PYTHONWARNINGS", None)  # only the command's own output may reach its standard error
    return subprocess.Popen(
        [sys.executable, "-m", "genai_sdk.cli", *args],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_for(condition: Callable[[], bool], what: str, process: subprocess.Popen[str], timeout: float = 8.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                process.kill()
            out, err = process.communicate()
            pytest.fail(f"{what}: never happened (exit status {process.returncode})\nstdout: {out}\nstderr: {err}")
        time.sleep(0.02)


def _interrupt(process: subprocess.Popen[str]) -> tuple[str, str]:
    process.send_signal(signal.SIGINT)
    try:
        return process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"the command did not end within 10 s of SIGINT\nstdout: {out}\nstderr: {err}")


def _assert_interrupted(process: subprocess.Popen[str], err: str) -> str:
    assert "Traceback" not in err, err
    assert process.returncode == INTERRUPTED, f"exit status {process.returncode}, stderr: {err!r}"
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].strip() and err.endswith("\n"), f"not one line: {err!r}"
    assert lines[0].startswith("genai: interrupted"), lines[0]
    return lines[0]


@posix_signals
def test_ctrl_c_during_a_replicate_prediction_cancels_it(genai_emulator: Emulator, tmp_path: Path) -> None:
    replicate = genai_emulator.replicate
    replicate.job_seconds = 60  # "processing" long after the interrupt
    replicate.max_wait = 0  # the create answers at once with the prediction's id, and the SDK polls
    process = _genai(
        ["image", "a fox in the snow", "--model", "replicate:black-forest-labs/flux-schnell", "-o", "fox.png"],
        genai_emulator, tmp_path / "work",
    )  # fmt: skip
    _wait_for(lambda: bool(genai_emulator.calls("replicate.predictions.create")), "the prediction's creation", process)
    (prediction_id,) = replicate.predictions
    # The SDK has the id in hand once it polls the prediction: from then on it is the SDK's to cancel.
    polled = f"/v1/predictions/{prediction_id}"
    _wait_for(
        lambda: any(c.path == polled for c in genai_emulator.calls("replicate.predictions.get")), "a poll", process
    )

    out, err = _interrupt(process)

    line = _assert_interrupted(process, err)
    assert out == "" and not (tmp_path / "work" / "fox.png").exists()
    cancels = [c.path for c in genai_emulator.calls("replicate.predictions.cancel")]
    assert cancels == [f"{polled}/cancel"], (
        f"no cancel of {prediction_id} reached the emulator; the command said {line!r}"
    )
    assert replicate.status_counts() == {"canceled": 1}


def _held(emulator: Emulator, operation: str) -> bool:
    """Whether a request took the queued fault: a "slow" answer is held back, and recorded only once it is sent."""
    with emulator._lock:
        return not emulator._faults.get(operation)


@posix_signals
def test_ctrl_c_during_an_openai_image_request(genai_emulator: Emulator, tmp_path: Path) -> None:
    genai_emulator.fail("images.generate", "slow", delay=6)
    process = _genai(
        ["image", "a fox in the snow", "--model", "openai:dall-e-2", "--size", "256x256", "-o", "fox.png"],
        genai_emulator, tmp_path / "work",
    )  # fmt: skip
    _wait_for(lambda: _held(genai_emulator, "images.generate"), "the image request", process)

    out, err = _interrupt(process)

    line = _assert_interrupted(process, err)
    assert out == "" and not (tmp_path / "work" / "fox.png").exists()
    assert "cancelled" not in line  # an OpenAI request cannot be called back: the line must not claim it was


def _cancel_failed() -> None:
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        raise genai.ProviderUnavailableError("could not reach Replicate", provider="replicate") from None


def _cancelled() -> None:
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt as interrupt:
        raise Cancelled("the call was cancelled; prediction p1 was canceled", provider="replicate") from interrupt


_VEO_WORDS = "operation models/veo-3.1-generate-001/operations/x1 could not be canceled (google has no way to): it runs on, and is counted as spent"


def _veo_ran_on() -> None:
    """As ``_flow.drive`` raises Ctrl-C after a job that cannot be stopped: the provider's Cancelled in its context."""
    try:
        raise Cancelled(f"the call was cancelled; {_VEO_WORDS}", provider="google")
    except Cancelled:
        raise KeyboardInterrupt from None


@pytest.mark.parametrize(
    ("model", "reports", "raise_", "said"),
    [
        (None, [], None, "genai: interrupted"),
        ("openai:dall-e-2", [], None, "genai: interrupted; the request to OpenAI was abandoned, though OpenAI may still finish and bill it"),
        ("openai:dall-e-2", ["done"], None, "genai: interrupted while writing the output; the call to openai:dall-e-2 had finished and was charged"),
        ("replicate:o/m", [], None, "genai: interrupted; the Replicate prediction was cancelled"),
        ("replicate:o/m", ["processing"], None, "genai: interrupted; the Replicate prediction was cancelled"),
        ("replicate:o/m", ["processing"], _cancelled, "genai: interrupted; the Replicate prediction was cancelled"),
        ("replicate:o/m", ["processing"], _cancel_failed, "genai: interrupted before the Replicate prediction was cancelled; it may still run"),
        ("whisper:tiny.en", ["transcribing"], None, "genai: interrupted; whisper:tiny.en stopped"),
        ("google:veo-3.1-generate-001", ["waiting"], _veo_ran_on, f"genai: interrupted; {_VEO_WORDS}"),
        ("google:veo-3.1-generate-001", ["waiting"], None, "genai: interrupted; the request to google:veo-3.1-generate-001 was abandoned"),
    ],
)  # fmt: skip
def test_the_line_says_what_became_of_the_backend_call(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    model: str | None,
    reports: list[str],
    raise_: Callable[[], None] | None,
    said: str,
) -> None:
    """In-process (no signal handler is touched): the interrupt, as the command's progress reports left it."""

    def command(args: argparse.Namespace) -> int:
        progress = cli._watch(args).progress()
        if model is not None:
            progress(genai.Progress("started", 0, 1, model))
        for stage in reports:
            progress(genai.Progress(stage, 1, 1))
        print("partial output")
        if raise_ is not None:
            raise_()
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_models", command)
    assert cli.main(["models"]) == INTERRUPTED
    captured = capsys.readouterr()
    assert captured.err == said + "\n" and captured.out == "partial output\n"


def test_errors_without_an_interrupt_keep_their_status(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def command(args: argparse.Namespace) -> int:
        raise genai.ProviderUnavailableError("down", provider="replicate")

    monkeypatch.setattr(cli, "cmd_models", command)
    assert cli.main(["models"]) == 1
    assert capsys.readouterr().err == "genai: ProviderUnavailableError: down\n"
