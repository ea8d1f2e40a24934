"""The ``genai`` command."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from ._errors import ConfigError, GenAIError, InvalidRequestError

INTERRUPTED = 130  # the shells' status for a command stopped by Ctrl-C (128 + SIGINT)


def _slug(text: str, limit: int = 40) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:limit] or "image"


def output_paths(pattern: str, count: int, prompt: str, model: str) -> list[Path]:
    """File names from a pattern with {i}, {n}, {slug} and {model}; an index is added if several files need one."""
    if count > 1 and "{i}" not in pattern:
        path = Path(pattern)
        pattern = str(path.with_name(f"{path.stem}{{i}}{path.suffix}"))
    try:
        names = [pattern.format(i=i, n=count, slug=_slug(prompt), model=_slug(model, 60)) for i in range(count)]
    except (KeyError, IndexError, ValueError) as exc:
        raise InvalidRequestError(f"output pattern {pattern!r}: use only {{i}}, {{n}}, {{slug}} and {{model}} ({exc})") from None
    return [Path(name) for name in names]


def check_output(pattern: str, count: int, prompt: str, model: str | None, extensions: Sequence[str], what: str) -> None:
    """Refuse an output pattern that could not be saved, before anything is sent (and paid for): an unknown
    placeholder, an extension the result cannot be saved as, a folder that does not exist."""
    if not pattern or not pattern.strip():
        raise InvalidRequestError("-o/--output is empty: give a file name, for example out.png")
    for path in output_paths(pattern, count, prompt, model or "model"):
        _check_path(path, extensions, what)


def _check_path(path: Path, extensions: Sequence[str], what: str) -> None:
    if path.suffix.lower() not in extensions:
        raise InvalidRequestError(f"cannot save {what} as {str(path)!r}: use one of {', '.join(extensions)} as its extension")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InvalidRequestError(f"cannot save {path}: the folder {folder} does not exist")
    if path.is_dir():
        raise InvalidRequestError(f"cannot save to {path}: it is a folder; give a file name")


STDIO = "-"  # a file argument that means standard input, or standard output after -o
_IMAGE_FORMATS = ("png", "jpg", "webp")


def _stdin_bytes(what: str) -> bytes:
    """Everything on standard input, for an argument given as ``-``; a terminal or an empty pipe is an error."""
    stream = sys.stdin
    if stream is None or stream.isatty():
        raise InvalidRequestError(f"- reads {what} from standard input, which is a terminal: pipe it in (< FILE)")
    data: bytes = stream.buffer.read()
    if not data:
        raise InvalidRequestError(f"standard input is empty: - reads {what} from it, so pipe some in")
    return data


def _stdin_text(what: str) -> str:
    try:
        text = _stdin_bytes(what).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequestError(f"standard input is not UTF-8 text ({exc})") from None
    if not text.strip():
        raise InvalidRequestError(f"standard input holds only white space: - reads {what} from it")
    return text.strip()


def _inputs(sources: Sequence[str | None], what: str) -> list[object]:
    """Paths as given, ``-`` replaced by the bytes on standard input (which only one of them may read)."""
    if sum(source == STDIO for source in sources) > 1:
        raise InvalidRequestError("only one input can be - (standard input)")
    return [_stdin_bytes(what) if source == STDIO else source for source in sources]


def _write_stdout(data: bytes) -> None:
    """The payload of ``-o -``: nothing else is written to standard output."""
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _option_value(raw: str) -> object:
    """A value parsed as JSON when it is JSON (numbers, booleans, null, lists, objects), else the text as given."""

    def refuse(constant: str) -> object:  # NaN and Infinity are not JSON: keep them as text
        raise ValueError(constant)

    try:
        value: object = json.loads(raw, parse_constant=refuse)
    except ValueError:
        return raw
    return value


def parse_options(items: Sequence[str] | None) -> list[tuple[str | None, str, object]]:
    """``--option`` arguments as (provider or None, name, value): ``KEY=VALUE`` or ``PROVIDER:KEY=VALUE``."""
    parsed: list[tuple[str | None, str, object]] = []
    for item in items or ():
        key, sep, raw = item.partition("=")
        provider, colon, name = key.strip().rpartition(":")
        if not sep or not name or (colon and not provider):
            raise InvalidRequestError(
                f"--option {item!r}: write KEY=VALUE or PROVIDER:KEY=VALUE, for example --option background=opaque"
            )
        parsed.append((provider or None, name, _option_value(raw)))
    return parsed


_SETTING = {"images": "image", "videos": "video", "speech_to_text": "speech_to_text", "text_to_speech": "text_to_speech"}


def _model_providers(client: Any, modality: str, model: str | None) -> list[str]:
    """The providers a call would use: that of --model, else those of the configured model and its fallbacks."""
    from ._catalog import split_model_id

    if model:
        ids = [model]
    else:
        configured = getattr(client.settings, _SETTING[modality])
        ids = [configured] if isinstance(configured, str) else [str(m) for m in configured or ()]
        if not ids:  # the built-in default (the image model) or a ConfigError saying what to set
            ids = [client.images._pipeline.model_id_for(modality, None)]
    return list(dict.fromkeys(split_model_id(m)[0] for m in ids))


def _call_settings(args: argparse.Namespace, client: Any, modality: str) -> dict[str, Any]:
    """The keyword arguments every call takes (model, account, timeout, provider_options), and those of
    generation (seed, negative prompt, steps, guidance) where the command has them; flags not given are left out."""
    names = ("model", "account", "timeout", "seed", "negative_prompt", "steps", "guidance")
    settings = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    options: dict[str, dict[str, object]] = {}
    parsed = parse_options(getattr(args, "option", None))
    defaults = _model_providers(client, modality, args.model) if any(p is None for p, _, _ in parsed) else []
    for provider, name, value in parsed:
        for target in [provider] if provider else defaults:
            options.setdefault(target, {})[name] = value
    if options:
        settings["provider_options"] = options
    return settings


def _print_estimate(cost: Any, as_json: bool) -> int:
    """``--estimate``: the price on standard output; nothing is sent, reserved or charged."""
    if as_json:
        print(json.dumps(cost.to_dict()))
    else:
        print(cost)
    return 0


def _check_stdout(args: argparse.Namespace, count: int, what: str) -> bool:
    """Whether the output is standard output (``-o -``), refusing what could not go there."""
    to_stdout = args.output == STDIO
    if getattr(args, "stdout_format", None) and not to_stdout:
        raise InvalidRequestError("--format applies to -o - (standard output); a file's extension picks its format")
    if not to_stdout:
        return False
    if count != 1:
        raise InvalidRequestError(
            f"-o - writes one {what} to standard output, and {count} were asked for: use -n 1, "
            "or a file pattern such as 'out{i}.png'"
        )
    if getattr(args, "json", False):
        raise InvalidRequestError("--json and -o - both write to standard output: choose one")
    return True


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


def _client(args: argparse.Namespace, **settings: Any) -> Any:
    from ._client import Client

    return Client(config=args.config, profile=args.profile, **settings)


def _report(result: Any, paths: Sequence[Path], as_json: bool = False) -> None:
    if as_json:  # the result as JSON, its media referenced by the files just written
        data = result.to_dict()
        media = data.get("images") or [data[key] for key in ("video", "audio") if key in data]
        for item, path in zip(media, paths, strict=True):
            item.pop("base64", None)
            item["path"] = str(path)
        print(json.dumps(data, ensure_ascii=False))
    else:
        for path in paths:
            print(path)
    _report_cost(result)


def _report_cost(result: Any, extra: str = "") -> None:
    print(f"cost: {result.cost}{extra}", file=sys.stderr)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)


ImageCall = Callable[[Any, dict[str, Any]], Any]


def _images(args: argparse.Namespace, label: str, slug: str, call: ImageCall, estimate: ImageCall) -> int:
    """Run an image call with a progress bar, then save what it made under the output pattern (or write the one
    image to standard output). ``--estimate`` prices the call instead, and sends nothing."""
    from ._media import IMAGE_EXTENSIONS
    from ._progress import ProgressBar

    parse_options(args.option)  # a malformed --option is refused before anything else
    to_stdout = not args.estimate and _check_stdout(args, args.n, "image")  # an estimate writes nothing
    if not to_stdout and not args.estimate:
        check_output(args.output, args.n, slug, args.model, IMAGE_EXTENSIONS, "an image")
    client = _client(args)
    try:
        settings = {**_call_settings(args, client, "images"), "n": args.n, "size": args.size}
        if args.estimate:
            return _print_estimate(estimate(client, settings), args.json)
        bar = ProgressBar(label)
        try:
            result = call(client, {**settings, "on_progress": _watch(args).progress(bar)})
        finally:
            bar.close()
    finally:
        client.close()
    if to_stdout:
        (image,) = result.images  # -n 1 was checked; a backend that sent more is refused by the pipeline
        _write_stdout(image.encode(args.stdout_format or "png"))
        _report_cost(result)
        return 0
    paths = output_paths(args.output, len(result.images), slug, result.model)
    for image, path in zip(result.images, paths, strict=True):
        image.save(path)
    _report(result, paths, args.json)
    return 0


def _read_lines(source: str, what: str) -> list[str]:
    """Non-empty lines of a file (or standard input for ``-``), ``#`` comments skipped."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(f"cannot read the {what} file {source}: {exc}") from None
    lines = [line.strip() for line in text.splitlines()]
    items = [line for line in lines if line and not line.startswith("#")]
    if not items:
        raise InvalidRequestError(f"the {what} file {source} holds no {what} (one a line; # starts a comment)")
    return items


def _batch_summary(results: Sequence[Any], labels: Sequence[str]) -> int:
    """One line per failed item and a total on standard error; status 1 when any item failed."""
    from ._batch import BatchResults

    batch = BatchResults(results)
    for index, error in batch.failed:
        print(f"failed: item {index} ({labels[index][:60]!r}): {type(error).__name__}: {error}", file=sys.stderr)
    print(f"{len(batch.succeeded)} of {len(batch)} done; cost: {batch.cost}", file=sys.stderr)
    return 1 if batch.failed else 0


def _image_batch(args: argparse.Namespace) -> int:
    """``genai image --prompts-file``: every prompt through the batch helper, each saved as soon as it is made."""
    from ._batch import run_batch
    from ._media import IMAGE_EXTENSIONS

    parse_options(args.option)
    if args.output == STDIO:
        raise InvalidRequestError("-o - writes one image to standard output; --prompts-file makes one per prompt: "
                                  "give a file pattern such as 'out/{i}.png'")  # fmt: skip
    _check_stdout(args, args.n, "image")
    prompts = _read_lines(args.prompts_file, "prompts")
    pattern = args.output
    if "{i}" not in pattern:
        path = Path(pattern)
        pattern = str(path.with_name(f"{path.stem}{{i}}{path.suffix}"))
    if args.n > 1 and "{j}" not in pattern:
        path = Path(pattern)
        pattern = str(path.with_name(f"{path.stem}_{{j}}{path.suffix}"))
    names = _batch_names(pattern, prompts, args.n, args.model or "model", IMAGE_EXTENSIONS)
    client = _client(args)
    try:
        common = {**_call_settings(args, client, "images"), "n": args.n, "size": args.size, "quality": args.quality,
                  "style": args.style}  # fmt: skip
        if args.estimate:
            costs = [client.images.estimate(prompt, **common) for prompt in prompts]
            return _print_estimate(sum(costs[1:], costs[0]), args.json)

        def one(prompt: object, settings: dict[str, Any]) -> list[Path]:
            index = settings.pop("item")
            result = client.images.generate(str(prompt), **settings)
            paths = names(index, result.model)
            for image, path in zip(result.images, paths, strict=False):
                image.save(path)
                print(path, flush=True)
            for warning in result.warnings:
                print(f"warning: item {index}: {warning}", file=sys.stderr)
            return paths

        items = [{"prompt": prompt, "item": index} for index, prompt in enumerate(prompts)]
        results = run_batch(one, items, common, primary="prompt", concurrency=args.concurrency, progress=None,
                            label="images")  # fmt: skip
    finally:
        client.close()
    return _batch_summary(results, prompts)


def _batch_names(
    pattern: str, prompts: Sequence[str], n: int, model: str, extensions: Sequence[str]
) -> Callable[[int, str], list[Path]]:
    """The output files of item ``i`` ({i}, {j} the picture of that item, {slug}, {model}), checked up front."""

    def names(index: int, served_by: str) -> list[Path]:
        try:
            return [
                Path(pattern.format(i=index, j=j, n=n, slug=_slug(prompts[index]), model=_slug(served_by, 60)))
                for j in range(n)
            ]
        except (KeyError, IndexError, ValueError) as exc:
            raise InvalidRequestError(
                f"output pattern {pattern!r}: use only {{i}}, {{j}}, {{n}}, {{slug}} and {{model}} ({exc})"
            ) from None

    for path in names(0, model):
        _check_path(path, extensions, "an image")
    return names


def cmd_image(args: argparse.Namespace) -> int:
    if (args.prompt is None) == (args.prompts_file is None):
        raise InvalidRequestError("give a prompt or --prompts-file FILE (one prompt a line), not both")
    if args.prompts_file is not None:
        return _image_batch(args)
    if args.prompt == STDIO:
        args.prompt = _stdin_text("the prompt")
    extra = {"quality": args.quality, "style": args.style}
    return _images(args, "image", args.prompt,
                   lambda client, kw: client.images.generate(args.prompt, **extra, **kw),
                   lambda client, kw: client.images.estimate(args.prompt, **extra, **kw))  # fmt: skip


def cmd_edit(args: argparse.Namespace) -> int:
    images = _inputs([*args.image, args.mask], "an image")
    mask = images.pop()
    return _images(args, "edit", args.prompt,
                   lambda client, kw: client.images.edit(images, args.prompt, mask=mask, **kw),
                   lambda client, kw: client.images.estimate(args.prompt, operation="edit", image=images, **kw))  # fmt: skip


def cmd_variations(args: argparse.Namespace) -> int:
    (image,) = _inputs([args.image], "an image")
    slug = "stdin" if args.image == STDIO else Path(args.image).stem
    return _images(args, "variations", slug,
                   lambda client, kw: client.images.variations(image, **kw),
                   lambda client, kw: client.images.estimate(operation="variations", image=image, **kw))  # fmt: skip


def cmd_video(args: argparse.Namespace) -> int:
    from ._media import VIDEO_EXTENSIONS, with_provenance_tag
    from ._progress import ProgressBar

    parse_options(args.option)
    if args.prompt == STDIO:
        args.prompt = _stdin_text("the prompt")
    (image,) = _inputs([args.image], "the first frame")
    to_stdout = not args.estimate and _check_stdout(args, 1, "video")
    if not to_stdout and not args.estimate:
        check_output(args.output, 1, args.prompt, args.model, VIDEO_EXTENSIONS, "a video")
    client = _client(args)
    try:
        settings = {**_call_settings(args, client, "videos"), "seconds": args.seconds, "fps": args.fps,
                    "size": args.size, **({"image": image} if image is not None else {})}  # fmt: skip
        if args.estimate:  # the client has no videos.estimate: its pipeline prices the same request
            from ._client import _video_request

            return _print_estimate(client.videos._pipeline.estimate(_video_request(args.prompt, **settings)), args.json)
        bar = ProgressBar("video")
        try:
            result = client.videos.generate(args.prompt, on_progress=_watch(args).progress(bar), **settings)
        finally:
            bar.close()
    finally:
        client.close()
    if to_stdout:
        video = result.video
        _write_stdout(with_provenance_tag(video.data, video.media_type, video.provenance))
        _report_cost(result)
        return 0
    path = output_paths(args.output, 1, args.prompt, result.model)[0]
    result.video.save(path)
    _report(result, [path], args.json)
    return 0


def _transcript_text(transcript: Any, args: argparse.Namespace) -> str:
    fmt = args.format
    if fmt in ("srt", "vtt"):
        layout = {"max_line_width": args.max_line_width, "max_line_count": args.max_line_count}
        return str(transcript.to_srt(**layout) if fmt == "srt" else transcript.to_vtt(**layout))
    if fmt == "json":
        return str(transcript.to_json()) + "\n"
    return str(transcript.text) + "\n"


def _write_text(text: str, output: str | None) -> None:
    if output is None or output == STDIO:
        sys.stdout.write(text)
        return
    from ._media import atomic_write

    atomic_write(output, lambda handle: handle.write(text.encode("utf-8")))
    print(output)


def _transcribe_batch(args: argparse.Namespace, client: Any, settings: dict[str, Any]) -> int:
    """Several files: each transcript written to the output pattern ({stem}, {i}) as soon as it is made."""
    from ._batch import run_batch

    pattern = args.output or f"{{stem}}.{args.format}"
    if "{stem}" not in pattern and "{i}" not in pattern:
        raise InvalidRequestError(f"-o {pattern!r}: with several files, name each output with {{stem}} or {{i}}")
    try:
        outputs = [pattern.format(stem=Path(file).stem, i=index) for index, file in enumerate(args.file)]
    except (KeyError, IndexError, ValueError) as exc:
        raise InvalidRequestError(f"output pattern {pattern!r}: use only {{stem}} and {{i}} ({exc})") from None
    twice = sorted({name for name in outputs if outputs.count(name) > 1})
    if twice:
        raise InvalidRequestError(f"-o {pattern!r} names {', '.join(twice)} for several files: add {{i}} to the pattern")
    method = client.speech.translate if args.command == "translate" else client.speech.transcribe

    def one(audio: object, kwargs: dict[str, Any]) -> str:
        index: int = kwargs.pop("item")
        transcript = method(audio, **kwargs)
        _write_text(_transcript_text(transcript, args), outputs[index])
        return outputs[index]

    items = [{"audio": file, "item": index} for index, file in enumerate(args.file)]
    results = run_batch(one, items, settings, primary="audio", concurrency=args.concurrency, progress=None,
                        label=args.command)  # fmt: skip
    return _batch_summary(results, args.file)


def cmd_transcribe(args: argparse.Namespace) -> int:
    from ._progress import ProgressBar

    parse_options(args.option)
    if STDIO in args.file and len(args.file) > 1:
        raise InvalidRequestError("- (standard input) is one recording: give it alone, not with other files")
    audio = _inputs(args.file, "the audio")
    client = _client(args)
    try:
        settings = _call_settings(args, client, "speech_to_text")
        if args.command == "transcribe":
            # subtitles are split at the words' own times: asked for whenever they are wanted
            settings.update(language=args.language, word_timestamps=args.word_timestamps or args.format in ("srt", "vtt"))
        if args.estimate:
            costs = [client.speech.estimate(args.command, item, **settings) for item in audio]
            return _print_estimate(sum(costs[1:], costs[0]), args.format == "json")
        if len(args.file) > 1:
            return _transcribe_batch(args, client, settings)
        bar = ProgressBar(args.command)
        method = client.speech.translate if args.command == "translate" else client.speech.transcribe
        try:
            transcript = method(audio[0], on_progress=_watch(args).progress(bar), **settings)
        finally:
            bar.close()
    finally:
        client.close()
    _write_text(_transcript_text(transcript, args), args.output)
    _report_cost(transcript)
    return 0


def cmd_detect_language(args: argparse.Namespace) -> int:
    parse_options(args.option)
    (audio,) = _inputs([args.file], "the audio")
    client = _client(args)
    try:
        settings = _call_settings(args, client, "speech_to_text")
        if args.estimate:
            return _print_estimate(client.speech.estimate("detect_language", audio, **settings), False)
        guess = client.speech.detect_language(audio, on_progress=_watch(args).progress(), **settings)
    finally:
        client.close()
    print(guess.language if guess.probability is None else f"{guess.language} {guess.probability:.3f}")
    return 0


def cmd_speak(args: argparse.Namespace) -> int:
    from ._media import AUDIO_EXTENSIONS, wav_with_provenance
    from ._progress import ProgressBar

    parse_options(args.option)
    to_stdout = args.output == STDIO
    fmt = args.format or ("wav" if to_stdout else Path(args.output).suffix.lstrip(".").lower() or "wav")
    text = _stdin_text("the text to speak") if args.text == STDIO else args.text
    if not to_stdout and not args.estimate:
        check_output(args.output, 1, text, args.model, AUDIO_EXTENSIONS, "speech")
    client = _client(args)
    try:
        settings = {**_call_settings(args, client, "text_to_speech"), "voice": args.voice, "format": fmt,
                    "speed": args.speed}  # fmt: skip
        if args.estimate:
            return _print_estimate(client.speech.estimate("synthesize", text, **settings), False)
        if to_stdout and fmt in ("wav", "pcm", "mp3"):  # played as it is made: `genai speak ... -o - | ffplay -`
            return _speak_streamed(client, text, settings)
        bar = ProgressBar("speak")
        try:
            result = client.speech.synthesize(text, on_progress=_watch(args).progress(bar), **settings)
        finally:
            bar.close()
    finally:
        client.close()
    audio = result.audio
    if to_stdout:
        _write_stdout(wav_with_provenance(audio.data, audio.provenance) if audio.media_type == "audio/wav" else audio.data)
    else:
        audio.save(args.output)
        print(args.output)
    _report_cost(result, f"; {audio.duration or 0:.2f} s of audio")
    return 0


def _speak_streamed(client: Any, text: str, settings: dict[str, Any]) -> int:
    """Speech to standard output chunk by chunk, so that a player reading the pipe starts at once."""
    with client.speech.stream(text, **settings) as stream:
        try:
            for chunk in stream:
                sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
        except BrokenPipeError:  # the player quit: the stream stops, charged for what was made
            with contextlib.suppress(OSError):
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - Python flushes stdout at exit: not into the pipe
            print("genai: the reader of standard output went away: speech stopped", file=sys.stderr)
            return 1
    result = stream.result
    _report_cost(result, f"; {result.audio.duration or 0:.2f} s of audio, the first after {stream.first_audio or 0:.2f} s")
    return 0


def _history_rows(entries: Sequence[Any]) -> list[dict[str, str]]:
    return [
        {
            "id": str(e.id),
            "time": e.created.isoformat(timespec="seconds"),
            "kind": e.kind,
            "credits": str(e.credits),
            "usd": "" if e.usd is None else str(e.usd),
            "model": e.model or "",
            "request_id": e.request_id or "",
            "reason": e.reason,
            "expires": e.expires.isoformat(timespec="seconds") if e.expires else "",
        }
        for e in entries
    ]


def _format_history(rows: list[dict[str, str]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    columns = ["id", "time", "kind", "credits", "usd", "model", "request_id", "reason", "expires"]
    if fmt == "csv":
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()
    shown = ["time", "kind", "credits", "usd", "model", "reason"]
    widths = {c: max([len(c), *(len(r[c]) for r in rows)]) for c in shown}
    lines = ["  ".join(c.ljust(widths[c]) for c in shown).rstrip(), "  ".join("-" * widths[c] for c in shown)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in shown).rstrip() for r in rows]
    return "\n".join(lines) + "\n"


def cmd_jobs(args: argparse.Namespace) -> int:
    """``genai jobs list|resume|cancel``: long backend jobs recorded beside the ledger."""
    from datetime import UTC, datetime

    from ._requests import VideoResult

    client = _client(args, **({"ledger": args.ledger} if args.ledger else {}))
    try:
        if args.action == "list":
            jobs = client.jobs.list(args.status)
            if args.json:
                print(json.dumps([{**{k: getattr(j, k) for k in ("id", "status", "model", "operation", "account",
                                  "request_id", "note")}, "credits": str(j.credits),
                                  "created": datetime.fromtimestamp(j.created, UTC).isoformat()} for j in jobs]))  # fmt: skip
            for job in [] if args.json else jobs:
                when = datetime.fromtimestamp(job.created, UTC).strftime("%Y-%m-%d %H:%M:%S")
                print(f"{job.id}  {job.status:9s}  {when}  {job.operation:16s} {job.model}  {job.note[:60]}".rstrip())
            if not jobs and not args.json:
                print("no jobs recorded", file=sys.stderr)
        elif args.action == "cancel":
            job = client.jobs.cancel(args.id)
            print(f"{job.id} {job.status}")
        else:
            from ._media import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

            video = client.jobs.get(args.id).operation.startswith("videos.")
            name = re.sub(r"[^A-Za-z0-9._-]+", "_", args.id.rsplit("/", 1)[-1])  # Veo ids are paths: their last part
            pattern = args.output or (f"{name}.mp4" if video else f"{name}{{i}}.png")
            try:
                first = Path(pattern.format(i=0, id=name))
            except (KeyError, IndexError, ValueError) as exc:
                raise InvalidRequestError(f"output pattern {pattern!r}: use only {{i}} and {{id}} ({exc})") from None
            _check_path(first, VIDEO_EXTENSIONS if video else IMAGE_EXTENSIONS, "a video" if video else "an image")
            result = client.jobs.resume(args.id)  # checked before: the output it pays for can be saved
            media = [result.video] if isinstance(result, VideoResult) else result.images
            paths = [Path(pattern.format(i=i, id=name)) for i in range(len(media))]
            for item, path in zip(media, paths, strict=True):
                item.save(path)
            _report(result, paths)
    finally:
        client.close()
    return 0


def cmd_credits(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    client = _client(args, **({"ledger": args.ledger} if args.ledger else {}))
    credits = client.credits
    action = args.action
    if action == "balance":
        balance, held = credits.balance(args.account), credits.reserved(args.account)
        print(f"{balance}" + (f" ({held} reserved by calls in flight)" if held else ""))
    elif action == "history":
        _write_text(_format_history(_history_rows(credits.history(args.account)), args.format), args.output)
    elif action == "grant":
        expires = None
        if args.expires:
            try:
                expires = datetime.fromisoformat(args.expires)
            except ValueError:
                raise InvalidRequestError(f"--expires {args.expires!r}: give a date such as 2026-12-31") from None
            expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
        entry = credits.grant(args.credits, args.account, reason=args.reason, expires=expires)
        print(f"granted {entry.credits}; balance {credits.balance(args.account)}")
    elif action == "budget":
        if args.clear:
            credits.set_budget(None, None, period=args.period, account=args.account)
            print(f"no {'daily' if args.period == 'day' else 'monthly'} budget")
        elif args.credits is None and args.usd is None:
            budgets = credits.budgets(args.account)
            for budget in budgets:
                limits = " and ".join(x for x in (f"{budget.credits} credits" if budget.credits is not None else "",
                                                  f"${budget.usd}" if budget.usd is not None else "") if x)  # fmt: skip
                print(f"budget: {limits} a {budget.period}")
            if not budgets:
                print("no budget")
        else:
            credits.set_budget(args.credits, args.usd, period=args.period, account=args.account)
            limits = " and ".join(x for x in (f"{args.credits} credits" if args.credits else "", f"${args.usd}" if args.usd else "") if x)
            print(f"budget: {limits} a {args.period}")
    elif action == "buy":
        entry = credits.buy(args.packs, args.account)
        print(f"bought {entry.credits} credits for {entry.usd} USD; balance {credits.balance(args.account)}")
    client.close()
    return 0


def _print_decision(what: str, decision: Any, as_json: bool) -> None:
    from .policy import describe

    if as_json:
        print(json.dumps({"checked": what, **describe(decision)}, indent=2))
        return
    verdict = {"block": "refused", "flag": "flagged (allowed)", "allow": "allowed"}[decision.action]
    categories = ", ".join(decision.categories) or "none"
    print(f"{what}: {verdict}; categories: {categories}; layer: {decision.layer}")
    if decision.reason:
        print(f"  reason: {decision.reason}")
    shown = sorted(((k, v) for k, v in decision.scores.items() if v >= 0.01), key=lambda kv: -kv[1])[:8]
    if shown:
        print("  scores: " + ", ".join(f"{k} {v:.2f}" for k, v in shown))
    if decision.people:
        print(f"  public figures named: {', '.join(decision.people)}")
    for warning in decision.warnings:
        print(f"  warning: {warning}")


def cmd_policy(args: argparse.Namespace) -> int:
    """Exit 0 when everything checked is allowed (flagged included), 1 when anything is refused."""
    if args.text is None and not args.image:
        raise InvalidRequestError("give a text to check, - to read it from standard input, or --image FILE")
    client = _client(args, ledger="memory://", **({"policy": args.policy} if args.policy else {}))  # checks spend nothing
    refused = False
    try:
        if args.text is not None:
            text = sys.stdin.read() if args.text == "-" else args.text
            decision = client.policy.check(text)
            refused |= not decision.allowed
            _print_decision("text", decision, args.json)
        for path in args.image or []:
            decision = client.policy.check_image(path, people=args.people or None)
            refused |= not decision.allowed
            _print_decision(path, decision, args.json)
    finally:
        client.close()
    return 1 if refused else 0


def _pull(name: str | None) -> int:
    """Bring a local model into the Hugging Face cache, so that later calls find it offline."""
    if not name:
        raise InvalidRequestError("genai models pull needs a model: whisper:SIZE, whisper:owner/name or diffusers:owner/name")
    provider, _, model = name.partition(":")
    if provider == "whisper" and model:
        from .providers.whisper import pull

        folder = pull(model)
    elif provider == "diffusers" and model:
        from .providers.diffusers import resolve_folder

        folder = resolve_folder(model, allow_download=True)
    else:
        raise InvalidRequestError(f"cannot pull {name!r}: give whisper:SIZE (whisper:small), whisper:owner/name or "
                                  "diffusers:owner/name; hosted models need no download")  # fmt: skip
    print(f"{name}: {folder}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from datetime import date

    from ._catalog import default_catalog

    if args.action == "pull":
        return _pull(args.name)
    if args.action is not None or args.name is not None:
        raise InvalidRequestError("genai models takes no argument but 'pull MODEL' (genai models pull whisper:small)")
    catalog = default_catalog()
    if args.provider is not None:
        from .providers import known_providers

        known = sorted({*known_providers(), *(m.provider for m in catalog.models())})
        if args.provider not in known:
            raise InvalidRequestError(f"unknown provider {args.provider!r}: the known providers are {', '.join(known)}")
    models = catalog.models(args.provider)
    today = date.today()
    if args.json:
        rows = []
        for m in models:
            rows.append({
                "model": m.id,
                "operations": sorted(m.operations),
                "sizes": list(m.sizes),
                "qualities": list(m.qualities),
                "max_n": m.max_n,
                "price_unit": m.price.unit if m.price else None,
                "prices_usd": {k: str(v) for k, v in (m.price.usd.items() if m.price else [])},
                "retired_on": m.retired_on.isoformat() if m.retired_on else None,
                "replacement": m.replacement,
            })
        print(json.dumps(rows, indent=2))
        return 0
    header = f"{'model':<30} {'operations':<36} {'sizes':<36} {'price (USD)':<22} status"
    print(header)
    print("-" * len(header))
    for m in models:
        kinds = sorted({op.split(".", 1)[0] for op in m.operations})
        ops = " ".join(kinds) + ": " + ",".join(sorted(op.split(".", 1)[1] for op in m.operations))
        sizes = ",".join(m.sizes) + (" +WxH" if m.size_rule else "")
        if m.price and m.price.usd:
            values = sorted(m.price.usd.values())
            price = f"{values[0]}-{values[-1]}/{m.price.unit}" if values[0] != values[-1] else f"{values[0]}/{m.price.unit}"
        else:
            price = "unpriced"
        if m.retired_on is None:
            status = "recommended" if m.recommended else "available"
        else:
            verb = "retired" if m.retired_on <= today else "retires"
            status = f"{verb} {m.retired_on}" + (f" -> {m.replacement}" if m.replacement else "")
        print(f"{m.id:<30} {ops:<36} {sizes:<36} {price:<22} {status}")
    if args.provider is None:
        print("\nlocal models are named by file or folder and described when first used:")
        print("  whisper:tiny.en (bundled) or whisper:/path, piper:en_US-joe-medium (bundled) or piper:/path/voice.onnx,")
        print("  diffusers:/path/to/pipeline; their compute-seconds are unpriced unless local_usd_per_second is set")
        print("any Replicate model runs as replicate:owner/name, replicate:owner/name:<version> or")
        print("  replicate:deployments/owner/name; its inputs are read from its schema; GPU-time billing is unpriced")
    return 0


def cmd_emulator(args: argparse.Namespace) -> int:
    import time

    from .testing import Emulator

    try:
        emulator = Emulator(args.host, args.port, latency=args.latency, any_key=args.any_key).start()
    except OSError as exc:  # the port is taken, or the address is not this machine's: one line, no traceback
        import errno

        if exc.errno == errno.EADDRINUSE:
            print(f"genai: port {args.port} on {args.host} is already in use: choose another with --port "
                  "(--port 0 picks a free one)", file=sys.stderr)  # fmt: skip
        else:
            print(f"genai: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    emulator.replicate.job_seconds = args.job_seconds
    for limit in args.rate_limit or ():
        operation, _, rate = limit.partition("=")
        count, _, per = rate.partition("/")
        try:
            emulator.rate_limit(operation, int(count), float(per or 60))
        except ValueError:
            raise InvalidRequestError(
                f"--rate-limit {limit!r}: write OPERATION=REQUESTS/SECONDS, for example images.generate=10/1"
            ) from None
    for key, value in emulator.env().items():
        print(f"export {key}={value}")
    print(f"# emulator listening on {emulator.url}; Ctrl-C stops it", file=sys.stderr)
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0


SHELLS = ("bash", "zsh", "fish")


def _command_tree(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], list[argparse.Action], dict[str, str]]]:
    """Every command of the parser, depth first: its path of names, its flags, its sub-commands with their help."""
    flags: list[argparse.Action] = []
    subcommands: dict[str, str] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                subcommands[name] = helps.get(name, "")
                yield from _command_tree(sub, (*path, name))
        elif action.option_strings:
            flags.append(action)
        elif action.choices:  # a positional with a fixed set of values completes like sub-commands
            subcommands.update(dict.fromkeys(map(str, action.choices), action.help or ""))
    yield path, flags, subcommands


def _subparsers(parser: argparse.ArgumentParser, path: Sequence[str]) -> list[tuple[str, argparse.ArgumentParser]]:
    """The sub-commands (name and parser) of the command at ``path``."""
    for name in path:
        parser = dict(_subparsers(parser, ()))[name]
    return [
        (name, sub)
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name, sub in action.choices.items()
    ]


def _completion_table(parser: argparse.ArgumentParser) -> tuple[list[str], list[str], list[str], list[str]]:
    """Shell ``case`` arms, shared by bash and zsh: moving into a sub-command, the values of a flag with choices,
    the flags of a command, the sub-commands of a command. Each arm's body is ``WORDS``, filled in per shell."""
    moves, choices, flags, subcommands = [], [], [], []
    for path, actions, subs in _command_tree(parser):
        key = " ".join(path)
        nested = {name for name, sub in _subparsers(parser, path)}
        moves += [f'"{key}/{name}") cmd="{" ".join((*path, name))}" ;;' for name in subs if name in nested]
        for action in actions:
            if action.choices:
                values = " ".join(str(choice) for choice in action.choices)
                choices += [f'"{key}/{flag}") WORDS {values} ;;' for flag in action.option_strings]
        flags.append(f'"{key}") WORDS {" ".join(flag for action in actions for flag in action.option_strings)} ;;')
        if subs:
            subcommands.append(f'"{key}") WORDS {" ".join(subs)} ;;')
    return moves, choices, flags, subcommands


def _case(arms: Sequence[str], body: Callable[[str], str], indent: str) -> str:
    """``case`` arms whose body is made from the arm's words."""
    lines = []
    for arm in arms:
        if ") WORDS " in arm:
            label, words = arm.split(") WORDS ", 1)
            lines.append(f"{indent}{label}) {body(words.removesuffix(' ;;'))} ;;")
        else:
            lines.append(indent + arm)
    return "\n".join(lines)


def bash_completion(parser: argparse.ArgumentParser) -> str:
    moves, choices, flags, subcommands = _completion_table(parser)
    words = lambda values: f'words="{values}"'  # noqa: E731
    return f"""# bash completion for genai: eval "$(genai completion bash)" in ~/.bashrc
_genai() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}" cmd="" words="" i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "$cmd/${{COMP_WORDS[i]}}" in
{_case(moves, words, " " * 12)}
        esac
    done
    case "$cmd/$prev" in
{_case(choices, words, " " * 8)}
    esac
    if [[ -z "$words" && "$cur" == -* ]]; then
        case "$cmd" in
{_case(flags, words, " " * 12)}
        esac
    elif [[ -z "$words" ]]; then
        case "$cmd" in
{_case(subcommands, words, " " * 12)}
        esac
    fi
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -o default -F _genai genai
"""


def zsh_completion(parser: argparse.ArgumentParser) -> str:
    moves, choices, flags, subcommands = _completion_table(parser)
    add = lambda values: f"compadd -- {values}; return"  # noqa: E731
    return f"""#compdef genai
# zsh completion for genai: save as _genai in a folder of $fpath, or eval "$(genai completion zsh)" after compinit
_genai() {{
    local cmd="" i
    for ((i = 2; i < CURRENT; i++)); do
        case "$cmd/${{words[i]}}" in
{_case(moves, lambda values: values, " " * 12)}
        esac
    done
    case "$cmd/${{words[CURRENT-1]}}" in
{_case(choices, add, " " * 8)}
    esac
    if [[ "${{words[CURRENT]}}" == -* ]]; then
        case "$cmd" in
{_case(flags, add, " " * 12)}
        esac
    else
        case "$cmd" in
{_case(subcommands, add, " " * 12)}
        esac
        _files
    fi
}}
if [[ "${{funcstack[1]}}" == "_genai" ]]; then
    _genai "$@"
else
    compdef _genai genai
fi
"""


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fish_completion(parser: argparse.ArgumentParser) -> str:
    moves, _, _, _ = _completion_table(parser)
    switch = "\n".join(
        f"            case {arm.split(')', 1)[0]}\n                set cmd {arm.split('cmd=', 1)[1].removesuffix(' ;;')}"
        for arm in moves
    )
    lines = [
        "# fish completion for genai: genai completion fish > ~/.config/fish/completions/genai.fish",
        "function __genai_command",
        '    set -l cmd ""',
        "    for word in (commandline -opc)[2..-1]",
        '        switch "$cmd/$word"',
        switch,
        "        end",
        "    end",
        '    echo "$cmd"',
        "end",
        "function __genai_at",
        "    set -l cmd (__genai_command)",
        '    test "$cmd" = "$argv[1]"',
        "end",
    ]
    for path, actions, subs in _command_tree(parser):
        at = "-n " + _fish_quote(f'__genai_at "{" ".join(path)}"')
        for name, about in subs.items():
            lines.append(f"complete -c genai {at} -f -a {_fish_quote(name)} -d {_fish_quote(about)}")
        for action in actions:
            spec = " ".join(f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}" for flag in action.option_strings)
            if action.choices:
                spec += " -x -a " + _fish_quote(" ".join(str(choice) for choice in action.choices))
            elif action.nargs != 0:
                spec += " -r"
            lines.append(f"complete -c genai {at} {spec} -d {_fish_quote(action.help or '')}")
    return "\n".join(lines) + "\n"


def cmd_completion(args: argparse.Namespace) -> int:
    """``genai completion SHELL``: a completion script made from the parser itself, so it never falls behind."""
    write = {"bash": bash_completion, "zsh": zsh_completion, "fish": fish_completion}[args.shell]
    sys.stdout.write(write(build_parser()))
    return 0


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
    from . import __version__

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


if __name__ == "__main__":
    raise SystemExit(main())
