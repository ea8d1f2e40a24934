"""The ``genai`` command: its parser, and ``main``, which runs a command and turns its errors into a status."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from .._errors import ConfigError, GenAIError, InvalidRequestError
from ._admin import cmd_credits, cmd_emulator, cmd_jobs, cmd_models, cmd_policy
from ._completion import SHELLS, bash_completion, cmd_completion, fish_completion, zsh_completion
from ._interrupt import (
    INTERRUPTED,
    _discard,
    _exit_on_interrupt,
    _interrupt_behind,
    _interruption,
    _say,
    _stopped_its_work,
    _Watch,
)
from ._interrupt import _watch as _watch  # the progress callback of a command's call, for tests that stand in for one
from ._io import _IMAGE_FORMATS, STDIO, check_output, output_paths, parse_options
from ._media import cmd_blend, cmd_edit, cmd_image, cmd_score, cmd_sketch, cmd_upscale, cmd_variations, cmd_video
from ._speech import cmd_detect_language, cmd_podcast, cmd_speak, cmd_transcribe

# What may be imported from here. The commands are among them: build_parser takes them from this module when it
# builds the parser, so a test may put its own in their place.
__all__ = [
    "INTERRUPTED",
    "SHELLS",
    "STDIO",
    "bash_completion",
    "build_parser",
    "check_output",
    "cmd_completion",
    "cmd_credits",
    "cmd_detect_language",
    "cmd_edit",
    "cmd_emulator",
    "cmd_image",
    "cmd_jobs",
    "cmd_models",
    "cmd_policy",
    "cmd_podcast",
    "cmd_speak",
    "cmd_transcribe",
    "cmd_blend",
    "cmd_score",
    "cmd_sketch",
    "cmd_upscale",
    "cmd_variations",
    "cmd_video",
    "fish_completion",
    "main",
    "output_paths",
    "parse_options",
    "zsh_completion",
]


def _call_flags(parser: argparse.ArgumentParser, generation: bool = False) -> None:
    """The flags every call takes; ``generation``: also those of image and video generation."""
    if generation:
        parser.add_argument("--seed", type=int, help="a seed, for repeatable results where the model takes one")
        parser.add_argument("--negative-prompt", metavar="TEXT", help="what the result should not show")
        parser.add_argument("--steps", type=int, help="denoising steps, where the model takes them")
        parser.add_argument("--guidance", type=float, help="how closely to follow the prompt (guidance scale)")
    parser.add_argument("--account", help="charge this account (default: the configured one)")
    parser.add_argument("--timeout", type=float, metavar="S", help="seconds for the whole call, retries included")
    parser.add_argument("--option", action="append", metavar="KEY=VALUE",
                        help="an option of the model's provider (repeatable); PROVIDER:KEY=VALUE names the provider; "
                        "a value is read as JSON when it is JSON, else as text")  # fmt: skip
    parser.add_argument("--estimate", action="store_true", help="print what the call would cost; nothing is sent")


def _image_output_flags(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("-o", "--output", default=default,
                        help="file name pattern with {i}, {n}, {slug}, {model}; the extension picks the format; "
                        f"- writes the image to standard output (default {default})")  # fmt: skip
    parser.add_argument("--format", dest="stdout_format", choices=_IMAGE_FORMATS,
                        help="the image format written by -o - (default png)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the result as JSON (cost, model, warnings, files)")



def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genai", description="Generative AI from the command line.")
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"genai-sdk {__version__}")
    parser.add_argument("--config", help="a genai.toml file (default: ./genai.toml if present)")
    parser.add_argument("--profile", help="a [profiles.NAME] table of the config file")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do")

    image = commands.add_parser("image", help="generate images from a prompt (or many, from a file)")
    image.add_argument("prompt", nargs="?", help="the prompt, - to read it from standard input (or give --prompts-file)")
    image.add_argument(
        "--prompts-file",
        metavar="FILE",
        help="one prompt a line (- reads standard input); -o may use {i} (the line) and {j} (the picture)",
    )
    image.add_argument(
        "--concurrency", type=int, default=8, help="prompts in flight at once with --prompts-file (default 8)"
    )
    image.add_argument("-n", type=int, default=1, help="how many images (default 1)")
    image.add_argument("--size", help="WIDTHxHEIGHT, for example 1024x1024")
    image.add_argument("--model", help="provider:model, for example openai:gpt-image-1.5")
    image.add_argument("--quality", help="the model's quality setting, for example high or hd")
    image.add_argument("--style", help="the model's style setting, for example vivid or natural")
    _call_flags(image, generation=True)
    _image_output_flags(image, "image{i}.png")
    image.set_defaults(func=cmd_image)

    edit = commands.add_parser("edit", help="edit an image as a prompt says")
    edit.add_argument("image", nargs="+", help="one image, or several to combine; - reads one from standard input")
    edit.add_argument("--prompt", "-p", required=True, help="what to change")
    edit.add_argument("--mask", help="PNG whose transparent areas mark what may change (- reads standard input)")
    edit.add_argument("-n", type=int, default=1, help="how many images (default 1)")
    edit.add_argument("--size", help="WIDTHxHEIGHT, for example 1024x1024")
    edit.add_argument("--model", help="provider:model, for example openai:gpt-image-1.5")
    _call_flags(edit, generation=True)
    _image_output_flags(edit, "edit{i}.png")
    edit.set_defaults(func=cmd_edit)

    variations = commands.add_parser("variations", help="variations of an image")
    variations.add_argument("image", help="the image; - reads it from standard input")
    variations.add_argument("-n", type=int, default=1, help="how many images (default 1)")
    variations.add_argument("--size", help="WIDTHxHEIGHT, for example 512x512")
    variations.add_argument("--model", help="provider:model, for example openai:dall-e-2")
    _call_flags(variations, generation=True)
    _image_output_flags(variations, "variation{i}.png")
    variations.set_defaults(func=cmd_variations)

    upscale = commands.add_parser("upscale", help="a larger picture of an image (super-resolution)")
    upscale.add_argument("image", help="the image; - reads it from standard input")
    upscale.add_argument("--scale", type=int, help="how many times larger, 2 to 8 (default: the model's own)")
    upscale.add_argument("--prompt", "-p", help="what the picture shows, for the models that take a prompt")
    upscale.add_argument("--model", help="provider:model, for example stability:upscale-fast")
    _call_flags(upscale, generation=True)
    _image_output_flags(upscale, "upscaled{i}.png")
    upscale.set_defaults(func=cmd_upscale, n=1, size=None)

    sketch = commands.add_parser("sketch", help="a picture from a line drawing or scribble and a prompt")
    sketch.add_argument("sketch", help="the sketch; - reads it from standard input")
    sketch.add_argument("--prompt", "-p", required=True, help="what the picture should show")
    sketch.add_argument("-n", type=int, default=1, help="how many images (default 1)")
    sketch.add_argument("--style", help="a style preset, for the models that have them")
    sketch.add_argument("--model", help="provider:model, for example stability:sketch")
    _call_flags(sketch, generation=True)
    _image_output_flags(sketch, "sketch{i}.png")
    sketch.set_defaults(func=cmd_sketch, size=None)

    blend = commands.add_parser("blend", help="one picture that combines several images")
    blend.add_argument("images", nargs="+", help="two or more images (- reads one from standard input)")
    blend.add_argument("--weights", metavar="W1,W2,...", help="how much of each image, e.g. 0.7,0.3 (default equal)")
    blend.add_argument("--prompt", "-p", help="what the blend should show, besides its images")
    blend.add_argument("--size", help="WIDTHxHEIGHT, for example 1024x1024")
    blend.add_argument("--model", help="provider:model, for example openai:gpt-image-1.5")
    _call_flags(blend, generation=True)
    _image_output_flags(blend, "blend{i}.png")
    blend.set_defaults(func=cmd_blend, n=1)

    for name, about, what in (("score", "how well each text matches an image (CLIP)", "texts"),
                              ("classify", "zero-shot classification of an image among labels (CLIP)", "labels")):  # fmt: skip
        scoring = commands.add_parser(name, help=about)
        scoring.add_argument("image", help="the image; - reads it from standard input")
        scoring.add_argument("texts", nargs="+", metavar=what.upper()[:-1], help=f"the {what}")
        scoring.add_argument("--model", help="a clip: model, for example clip:/models/clip-vit-base-patch32 "
                             "(default: the image_scoring setting)")  # fmt: skip
        if name == "classify":
            scoring.add_argument("--template", help="how a label is written for the model (default 'a photo of a "
                                 "{label}')")  # fmt: skip
        scoring.add_argument("--json", action="store_true", help="print the result as JSON")
        _call_flags(scoring)
        scoring.set_defaults(func=cmd_score)

    video = commands.add_parser("video", help="generate a video from a prompt (and a first frame)")
    video.add_argument("prompt", help="the prompt, - to read it from standard input")
    video.add_argument("--image", metavar="FILE", help="the first frame: image to video (- reads standard input)")
    video.add_argument("--seconds", type=float, help="the video's length in seconds")
    video.add_argument("--fps", type=int, help="frames per second")
    video.add_argument("--size", help="WIDTHxHEIGHT")
    video.add_argument("--model", help="for example diffusers:/models/text-to-video")
    _call_flags(video, generation=True)
    video.add_argument("-o", "--output", default="{slug}.mp4",
                       help="file name pattern with {slug} and {model}; - writes the video to standard output")  # fmt: skip
    video.add_argument("--json", action="store_true", help="print the result as JSON (cost, model, warnings, file)")
    video.set_defaults(func=cmd_video)

    for name, about in (("transcribe", "speech to text"), ("translate", "speech in any language to English text")):
        speech = commands.add_parser(name, help=about)
        speech.add_argument("file", nargs="+", help="audio in any common container: wav, flac, mp3, ogg, m4a, webm; "
                            "- reads it from standard input")  # fmt: skip
        speech.add_argument("--model", help="for example whisper:tiny.en or openai:whisper-1")
        speech.add_argument("--format", choices=("txt", "srt", "vtt", "json"), default="txt",
                            help="the transcript's format (default txt)")  # fmt: skip
        speech.add_argument("--max-line-width", type=int, default=42, metavar="N",
                            help="subtitles (srt, vtt): characters a line at most (default 42)")  # fmt: skip
        speech.add_argument("--max-line-count", type=int, default=2, metavar="N",
                            help="subtitles (srt, vtt): lines a cue at most (default 2)")  # fmt: skip
        speech.add_argument(
            "-o",
            "--output",
            help="write here instead of standard output (- is standard output); with several files, a "
            "pattern with {stem} (the file's name) or {i} (default: {stem}.FORMAT)",
        )
        speech.add_argument("--concurrency", type=int, default=4, help="files in flight at once (default 4)")
        if name == "transcribe":
            speech.add_argument("--language", help="ISO 639-1 code, for example en")
            speech.add_argument("--word-timestamps", action="store_true", help="time every word, not only segments")
        _call_flags(speech)
        speech.set_defaults(func=cmd_transcribe)

    detect = commands.add_parser("detect-language", help="which language is spoken")
    detect.add_argument("file", help="the audio; - reads it from standard input")
    detect.add_argument("--model", help="for example whisper:tiny")
    _call_flags(detect)
    detect.set_defaults(func=cmd_detect_language)

    speak = commands.add_parser("speak", help="text to speech")
    speak.add_argument("text", help="the text to speak, - to read it from standard input")
    speak.add_argument("-o", "--output", required=True,
                       help="audio file, the extension picks the format; - writes the audio to standard output")  # fmt: skip
    speak.add_argument("--model", help="for example piper:en_US-joe-medium or openai:tts-1")
    speak.add_argument("--voice", help="the voice, for the models that have several")
    speak.add_argument("--format", help="wav, mp3, flac, ogg, opus, aac, m4a, pcm (default: from the extension, "
                       "or wav with -o -)")  # fmt: skip
    speak.add_argument("--speed", type=float, default=1.0, help="1.0 is the voice's own pace (default)")
    _call_flags(speak)
    speak.set_defaults(func=cmd_speak)

    podcast = commands.add_parser("podcast", help="a script of 'speaker: line' lines spoken by several voices")
    podcast.add_argument("script", help="the script file (one 'speaker: line' a line; # comments); - reads it from "
                         "standard input")  # fmt: skip
    podcast.add_argument("-o", "--output", required=True, help="audio file, the extension picks the format "
                         "(MP3 and M4A get a chapter a turn)")  # fmt: skip
    podcast.add_argument("--voice", action="append", metavar="SPEAKER=MODEL[@VOICE]",
                         help="a speaker's voice, e.g. guest=openai:tts-1@nova (repeatable); speakers without one "
                         "get the default model's voices in turn")  # fmt: skip
    podcast.add_argument("--model", help="the default model, for example openai:tts-1 or piper:en_US-joe-medium")
    podcast.add_argument("--pause", type=float, default=0.5, metavar="S", help="seconds between turns (default 0.5)")
    _call_flags(podcast)
    podcast.set_defaults(func=cmd_podcast)

    jobs = commands.add_parser("jobs", help="long backend jobs: list, resume (collect and charge once), cancel")
    jobs.add_argument("--ledger", help="ledger URL (default: the configured one)")
    job_actions = jobs.add_subparsers(dest="action", required=True, metavar="ACTION", help="list, resume or cancel")
    listing = job_actions.add_parser("list", help="recorded jobs, oldest first")
    listing.add_argument("--status", choices=("running", "done", "failed", "cancelled"), help="only jobs in this state")
    listing.add_argument("--json", action="store_true", help="print them as JSON")
    resume = job_actions.add_parser("resume", help="wait for a running job, save its output, charge it once")
    resume.add_argument("id", help="the job's id, as jobs list shows it")
    resume.add_argument("-o", "--output", help="file name pattern with {i} and {id} (default: ID{i}.png or ID.mp4)")
    cancel = job_actions.add_parser("cancel", help="stop a running job and give its reservation back")
    cancel.add_argument("id", help="the job's id, as jobs list shows it")
    jobs.set_defaults(func=cmd_jobs)

    credits = commands.add_parser("credits", help="balances, history, grants and budgets of the ledger")
    credits.add_argument("--ledger", help="ledger URL (default: the configured one)")
    actions = credits.add_subparsers(dest="action", required=True, metavar="ACTION",
                                     help="balance, history, grant, budget or buy")  # fmt: skip
    for name, about in (("balance", "credits left"), ("history", "grants, charges and expiries"),
                        ("grant", "add credits"), ("budget", "list budgets, or set one (--credits, --usd), or --clear one"), ("buy", "buy packs of credits (plans that sell them)")):
        action = actions.add_parser(name, help=about)
        action.add_argument("--account", help="the account (default: the configured one)")
        if name == "history":
            action.add_argument("--format", choices=("table", "csv", "json"), default="table",
                                help="how to print it (default table)")  # fmt: skip
            action.add_argument("-o", "--output", help="write here instead of standard output")
        elif name == "grant":
            action.add_argument("credits", help="how many credits to add")
            action.add_argument("--reason", default="grant", help="why, for the history (default grant)")
            action.add_argument("--expires", help="a date or time, for example 2026-12-31")
        elif name == "budget":
            action.add_argument("--credits", help="the most credits the account may spend in a period")
            action.add_argument("--usd", help="the most US dollars the account may spend in a period")
            action.add_argument("--period", choices=("day", "month"), default="month",
                                help="the budget's period (default month)")  # fmt: skip
            action.add_argument("--clear", action="store_true", help="remove the period's budget")
        elif name == "buy":
            action.add_argument("--packs", type=int, default=1, help="how many packs (default 1)")
        action.set_defaults(func=cmd_credits)

    policy = commands.add_parser("policy", help="the content policy's decision on a text or an image")
    checks = policy.add_subparsers(dest="action", required=True, metavar="ACTION", help="check")
    check = checks.add_parser("check", help="check a prompt or images; exit 0 if allowed, 1 if refused")
    check.add_argument("text", nargs="?", help="the prompt to check, or - to read it from standard input")
    check.add_argument("--image", action="append", metavar="FILE", help="an image to check (repeatable)")
    check.add_argument("--people", action="append", metavar="NAME",
                       help="a public figure the image's prompt named: turns on the likeness check (repeatable)")
    check.add_argument("--policy", help="off, standard, strict, monitor or a rules file (default: the configured one)")
    check.add_argument("--json", action="store_true", help="print the decision as JSON")
    check.set_defaults(func=cmd_policy)

    models = commands.add_parser("models", help="the model catalog: capabilities, prices, retirement dates; "
                                 "'genai models pull MODEL' downloads a local model")  # fmt: skip
    models.add_argument("action", nargs="?", choices=("pull",), help="pull: download a local model into the cache")
    models.add_argument("name", nargs="?", help="the model to pull: whisper:small, whisper:owner/name, diffusers:owner/name")
    models.add_argument("--provider", help="only this provider's models, for example openai")
    models.add_argument("--json", action="store_true", help="print the catalog as JSON")
    models.set_defaults(func=cmd_models)

    emulator = commands.add_parser("emulator", help="run the API emulator on loopback until interrupted")
    emulator.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    emulator.add_argument("--port", type=int, default=8765, help="the port to listen on; 0 picks a free one (default 8765)")
    emulator.add_argument("--latency", type=float, default=0.0, metavar="S", help="seconds before every answer (default 0)")
    emulator.add_argument("--rate-limit", action="append", metavar="OP=N/S",
                          help="answer 429 beyond N requests of OP in S seconds, e.g. images.generate=10/1 (repeatable)")
    emulator.add_argument("--job-seconds", type=float, default=0.0, metavar="S",
                          help="how long each Replicate prediction runs (default 0: at once)")
    emulator.add_argument("--any-key", action="store_true",
                          help="accept any non-empty API key (for clients and test suites with keys of their own)")
    emulator.set_defaults(func=cmd_emulator)

    completion = commands.add_parser("completion", help="print a shell completion script (bash, zsh or fish)")
    completion.add_argument("shell", choices=SHELLS, help="the shell the script is for")
    completion.set_defaults(func=cmd_completion)
    return parser



def main(argv: Sequence[str] | None = None) -> int:
    """The ``genai`` command. Ctrl-C anywhere ends it with one line on standard error and status 130.

    Without ``argv`` (the program itself, run from the main thread, listening to Ctrl-C) it owns the process's SIGINT
    handling: it counts interrupts while the command runs (a second one cuts the backend's clean-up short), and from
    the first interrupt, or from the command's end, a Ctrl-C ends the process at once, so that neither a second
    Ctrl-C nor one during the interpreter's shutdown turns into a traceback. Called with an argument list (from tests,
    or from another program) it leaves signal handlers alone.
    """
    watch = _Watch()
    program = (
        argv is None
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler  # not ignored (started in the background)
    )
    if program:

        def count(signum: int, frame: FrameType | None) -> None:
            watch.interrupts += 1
            raise KeyboardInterrupt

        signal.signal(signal.SIGINT, count)
    code = INTERRUPTED
    try:
        try:
            code = _dispatch(argv, watch)
        except KeyboardInterrupt as exc:
            if program:
                _exit_on_interrupt(watch, over=False)
            again = watch.interrupts > 1 or _interrupt_behind(exc) is not None
            _say(watch, _interruption(watch, cut_short=again, error=exc))
        except Exception as exc:  # raised in the backend's clean-up after an interrupt, or in its stead
            if not watch.interrupts and _interrupt_behind(exc) is None:
                raise
            if program:
                _exit_on_interrupt(watch, over=False)
            _say(watch, _interruption(watch, cut_short=watch.interrupts > 1 or not _stopped_its_work(exc), error=exc))
    except KeyboardInterrupt:  # Ctrl-C again, before the first one was reported
        _say(watch, "genai: interrupted")
    finally:
        if program:
            _exit_on_interrupt(watch, over=True)
            import atexit

            # Registered last, so run first: once the exit handlers start, the interpreter's own ending (flushes,
            # freeing modules, after which Python's handler would be gone) runs to its end through any Ctrl-C.
            atexit.register(signal.signal, signal.SIGINT, signal.SIG_IGN)
    return code


def _dispatch(argv: Sequence[str] | None, watch: _Watch) -> int:
    args = build_parser().parse_args(argv)
    args.watch = watch
    try:
        code: int = args.func(args)
        return code
    except GenAIError as exc:
        if watch.interrupts or _interrupt_behind(exc) is not None:
            raise  # an interrupt, however the backend reported it: main says so
        if isinstance(exc, ConfigError):
            print(f"genai: configuration: {exc}", file=sys.stderr)
            return 2
        if isinstance(exc, InvalidRequestError):
            print(f"genai: {exc}", file=sys.stderr)
            return 2
        print(f"genai: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (genai models | head): not an error of ours
        _discard(sys.stdout)
        return 0
