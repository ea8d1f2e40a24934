"""Ctrl-C: what a command was doing when it came, and the one line that says what became of its backend call."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

INTERRUPTED = 130  # the shells' status for a command stopped by Ctrl-C (128 + SIGINT)



class _Watch:
    """What a command is doing, so that an interrupt can say what became of it (from the call's progress reports):
    which backend call was in flight, whether the call had finished; and whether the one line about the interrupt
    was written."""

    def __init__(self) -> None:
        self.model: str | None = None  # the model of the backend call started last
        self.finished = False  # the call returned (and was charged): what remains is writing its output
        self.interrupts = 0  # Ctrl-Cs counted (by the program's own handler: see main)
        self.told = False

    def progress(self, bar: Callable[[Any], None] | None = None) -> Callable[[Any], None]:
        """An on_progress callback that takes note of the call's stages, then draws the bar."""

        def report(progress: Any) -> None:
            if progress.stage == "started":
                self.model, self.finished = progress.message or None, False
            self.finished = self.finished or progress.stage == "done"
            if bar is not None:
                bar(progress)

        return report


def _watch(args: argparse.Namespace) -> _Watch:
    watch = getattr(args, "watch", None)
    if not isinstance(watch, _Watch):
        watch = args.watch = _Watch()
    return watch



def _chain(error: BaseException) -> Iterator[BaseException]:
    """The exceptions an error was raised from or while handling, nearest first."""
    seen = {id(error)}
    link = error.__cause__ or error.__context__
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__


_LOCAL = ("diffusers", "whisper", "piper")  # backends that run in this process: they end with it


def _interruption(watch: _Watch, cut_short: bool, error: BaseException | None = None) -> str:
    """The one line an interrupt gets: what became of the backend call in flight, if there was one. Nothing in it
    may read as a failure of the command's own. ``cut_short``: the backend's clean-up after the interrupt did not
    run to its end (Ctrl-C again, or an error in it)."""
    model = watch.model
    if model is None:
        return "genai: interrupted"
    if watch.finished:
        return f"genai: interrupted while writing the output; the call to {model} had finished and was charged"
    provider = model.split(":", 1)[0]
    if provider == "replicate":  # the provider cancels its prediction (found first, if being created) before going on
        if cut_short:
            return "genai: interrupted before the Replicate prediction was cancelled; it may still run"
        return "genai: interrupted; the Replicate prediction was cancelled"
    if provider in _LOCAL:
        return f"genai: interrupted; {model} stopped"
    if provider == "openai":
        return "genai: interrupted; the request to OpenAI was abandoned, though OpenAI may still finish and bill it"
    # Another backend: its provider's own words, when it says what became of the work (a job it could not stop).
    stopped = next((link for link in ((error, *_chain(error)) if error else ()) if _stopped_its_work(link)), None)
    if stopped is not None:
        words = str(getattr(stopped, "message", stopped)).removeprefix("the call was cancelled; ")
        return f"genai: interrupted; {words}"
    return f"genai: interrupted; the request to {model} was abandoned"


def _interrupt_behind(error: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C an error was raised while handling: a backend's clean-up (a cancel) that failed, or a backend that
    turned the interrupt into an error of its own once it had stopped its work."""
    return next((link for link in _chain(error) if isinstance(link, KeyboardInterrupt)), None)


def _stopped_its_work(error: BaseException) -> bool:
    """Whether an error is the providers' word that the backend work was stopped (providers.base.Cancelled)."""
    base = sys.modules.get("genai_sdk.providers.base")  # loaded if a provider raised it
    cancelled = getattr(base, "Cancelled", None)
    return isinstance(cancelled, type) and isinstance(error, cancelled)


def _say(watch: _Watch, line: str) -> None:
    """Write the interrupt's line once, after whatever output is pending; a closed stream is no reason for more."""
    if watch.told:
        return
    watch.told = True
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is sys.stderr:
                stream.write(line + "\n")
            stream.flush()
        except (OSError, ValueError):  # the reader went away (genai ... | head, killed by the same Ctrl-C)
            _discard(stream)


def _discard(stream: Any) -> None:
    """Point a broken standard stream at /dev/null, so that the interpreter's last flush does not complain."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
    except (OSError, ValueError):  # not a real file (a test's capture) or already closed
        pass


def _exit_on_interrupt(watch: _Watch, over: bool) -> None:
    """From now on Ctrl-C ends the process at once with status 130 and, at most, the one line: while the first
    interrupt is being reported, and while the interpreter shuts down (flushes, joins threads, runs atexit), where
    Python would otherwise print a traceback or an "Exception ignored" report. ``over``: the command had ended."""
    line = b"genai: interrupted while exiting; the command had ended\n" if over else b"genai: interrupted\n"

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        try:
            sys.stdout.flush()
        except BaseException:  # a flush cut short (reentrant, broken pipe): nothing more to do
            pass
        if not watch.told:
            watch.told = True
            try:
                os.write(sys.stderr.fileno(), line)
            except (OSError, ValueError):
                pass
        os._exit(INTERRUPTED)

    signal.signal(signal.SIGINT, on_sigint)
