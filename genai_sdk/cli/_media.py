"""The commands that make pictures and videos: ``image`` (one prompt or a file of them), ``edit``, ``variations``,
``video``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .._errors import InvalidRequestError
from ._interrupt import _watch
from ._io import (
    STDIO,
    _batch_summary,
    _call_settings,
    _check_path,
    _check_stdout,
    _client,
    _inputs,
    _print_estimate,
    _report,
    _report_cost,
    _slug,
    _stdin_text,
    _write_stdout,
    check_output,
    output_paths,
    parse_options,
)

ImageCall = Callable[[Any, dict[str, Any]], Any]


def _images(args: argparse.Namespace, label: str, slug: str, call: ImageCall, estimate: ImageCall) -> int:
    """Run an image call with a progress bar, then save what it made under the output pattern (or write the one
    image to standard output). ``--estimate`` prices the call instead, and sends nothing."""
    from .._media import IMAGE_EXTENSIONS
    from .._progress import ProgressBar

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



def _image_batch(args: argparse.Namespace) -> int:
    """``genai image --prompts-file``: every prompt through the batch helper, each saved as soon as it is made."""
    from .._batch import run_batch
    from .._media import IMAGE_EXTENSIONS

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


def cmd_upscale(args: argparse.Namespace) -> int:
    (image,) = _inputs([args.image], "an image")
    slug = "stdin" if args.image == STDIO else Path(args.image).stem
    extra = {"scale": args.scale, "prompt": args.prompt}
    return _images(args, "upscale", slug,
                   lambda client, kw: client.images.upscale(image, **extra, **kw),
                   lambda client, kw: client.images.estimate(args.prompt, operation="upscale", image=image,
                                                             **{**kw, "scale": args.scale}))  # fmt: skip


def cmd_sketch(args: argparse.Namespace) -> int:
    (sketch,) = _inputs([args.sketch], "a sketch")
    return _images(args, "sketch", args.prompt[:40],
                   lambda client, kw: client.images.from_sketch(sketch, args.prompt, **kw),
                   lambda client, kw: client.images.estimate(args.prompt, operation="sketch", image=sketch, **kw))  # fmt: skip


def cmd_blend(args: argparse.Namespace) -> int:
    images = _inputs(args.images, "the images")
    weights = _weights(args.weights) if args.weights else None
    return _images(args, "blend", "blend",
                   lambda client, kw: client.images.blend(images, weights=weights, prompt=args.prompt, **kw),
                   lambda client, kw: client.images.estimate(args.prompt, operation="blend", image=images,
                                                             **{**kw, "weights": weights}))  # fmt: skip


def _weights(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise InvalidRequestError(f"--weights {text!r}: give numbers separated by commas, e.g. 0.7,0.3") from None


def cmd_video(args: argparse.Namespace) -> int:
    from .._media import VIDEO_EXTENSIONS, with_provenance_tag
    from .._progress import ProgressBar

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
            from .._client import _video_request

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


def cmd_score(args: argparse.Namespace) -> int:
    """``genai score IMAGE TEXT...`` and ``genai classify IMAGE LABEL...``: an image-text model's (CLIP's) verdict."""

    (image,) = _inputs([args.image], "an image")
    client = _client(args)
    try:
        settings = _call_settings(args, client, "image_scoring")
        if args.command == "classify":
            if args.template:
                settings["template"] = args.template
            verdict = client.images.classify(image, args.texts, **settings)
            rows = [(s.label, s.probability, s.similarity) for s in verdict.labels]
        else:
            verdict = client.images.score(image, args.texts, **settings)
            rows = [(s.text, s.probability, s.similarity) for s in verdict.scores]
    finally:
        client.close()
    if args.json:
        print(verdict.to_json())
    else:
        width = max(len(text) for text, _, _ in rows)
        print(f"{'text':<{width}}  probability  similarity")
        for text, probability, similarity in rows:
            print(f"{text:<{width}}  {probability:11.4f}  {similarity:10.4f}")
    _report_cost(verdict)
    return 0
