"""The speech commands: ``transcribe``, ``translate``, ``detect-language`` and ``speak``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .._errors import InvalidRequestError
from ._interrupt import _discard, _watch
from ._io import (
    STDIO,
    _batch_summary,
    _call_settings,
    _client,
    _inputs,
    _print_estimate,
    _report_cost,
    _stdin_text,
    _write_stdout,
    _write_text,
    check_output,
    parse_options,
)


def _transcript_text(transcript: Any, args: argparse.Namespace) -> str:
    fmt = args.format
    if fmt in ("srt", "vtt"):
        layout = {"max_line_width": args.max_line_width, "max_line_count": args.max_line_count}
        return str(transcript.to_srt(**layout) if fmt == "srt" else transcript.to_vtt(**layout))
    if fmt == "json":
        return str(transcript.to_json()) + "\n"
    return str(transcript.text) + "\n"



def _transcribe_batch(args: argparse.Namespace, client: Any, settings: dict[str, Any]) -> int:
    """Several files: each transcript written to the output pattern ({stem}, {i}) as soon as it is made."""
    from .._batch import run_batch

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
    from .._progress import ProgressBar

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
    from .._media import AUDIO_EXTENSIONS, wav_with_provenance
    from .._progress import ProgressBar

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
            _discard(sys.stdout)  # the interpreter's last flush goes nowhere, not into the broken pipe
            print("genai: the reader of standard output went away: speech stopped", file=sys.stderr)
            return 1
    result = stream.result
    _report_cost(result, f"; {result.audio.duration or 0:.2f} s of audio, the first after {stream.first_audio or 0:.2f} s")
    return 0


def cmd_podcast(args: argparse.Namespace) -> int:
    """``genai podcast SCRIPT -o FILE``: a script of ``speaker: line`` lines spoken by several voices."""
    from .._dialogue import read_script
    from .._media import AUDIO_EXTENSIONS

    source = _stdin_text("the script") if args.script == STDIO else _read_script_file(args.script)
    script = read_script(source)
    voices: dict[str, str] = {}
    for given in args.voice or []:
        speaker, equals, voice = given.partition("=")
        if not equals or not speaker.strip() or not voice.strip():
            raise InvalidRequestError(f"--voice {given!r}: write SPEAKER=MODEL or SPEAKER=MODEL@VOICE")
        voices[speaker.strip()] = voice.strip()
    fmt = Path(args.output).suffix.lstrip(".").lower() or "wav"
    if not args.estimate:
        check_output(args.output, 1, source, args.model, AUDIO_EXTENSIONS, "speech")
    client = _client(args)
    try:
        settings = _call_settings(args, client, "text_to_speech")
        if args.estimate:  # each turn priced by its speaker's model; nothing is sent
            from .._dialogue import voice_setting

            costs = [client.speech.estimate("synthesize", text, **{**settings, **voice_setting(voices[speaker])}
                                            if speaker in voices else settings) for speaker, text in script]  # fmt: skip
            return _print_estimate(sum(costs[1:], costs[0]), False)
        result = client.speech.synthesize_dialogue(script, voices=voices, pause=args.pause, format=fmt, **settings)
    finally:
        client.close()
    result.audio.save(args.output)
    print(args.output)
    for turn in result.turns:
        print(f"{turn.start:8.2f} {turn.end:8.2f}  {turn.speaker}: {turn.text[:60]}", file=sys.stderr)
    _report_cost(result, f"; {result.audio.duration or 0:.2f} s of audio, {len(result.turns)} turns")
    return 0


def _read_script_file(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidRequestError(f"cannot read the script {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InvalidRequestError(f"the script {path} is not UTF-8 text") from None
