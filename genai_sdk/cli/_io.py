"""What the commands share: reading standard input, writing standard output, output file names, --option values, the
client and the settings of a call, and the lines that report a result."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._errors import InvalidRequestError


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
    from .._catalog import split_model_id

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
    names = ("model", "account", "timeout", "seed", "negative_prompt", "steps", "guidance", "style")
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



def _client(args: argparse.Namespace, **settings: Any) -> Any:
    from .._client import Client

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



def _batch_summary(results: Sequence[Any], labels: Sequence[str]) -> int:
    """One line per failed item and a total on standard error; status 1 when any item failed."""
    from .._batch import BatchResults

    batch = BatchResults(results)
    for index, error in batch.failed:
        print(f"failed: item {index} ({labels[index][:60]!r}): {type(error).__name__}: {error}", file=sys.stderr)
    print(f"{len(batch.succeeded)} of {len(batch)} done; cost: {batch.cost}", file=sys.stderr)
    return 1 if batch.failed else 0



def _write_text(text: str, output: str | None) -> None:
    if output is None or output == STDIO:
        sys.stdout.write(text)
        return
    from .._media import atomic_write

    atomic_write(output, lambda handle: handle.write(text.encode("utf-8")))
    print(output)
