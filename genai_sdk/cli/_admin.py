"""The commands around the calls: ``jobs``, ``credits``, ``policy``, ``models`` and ``emulator``."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._errors import InvalidRequestError
from ._io import _check_path, _client, _report, _write_text


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

    from .._requests import VideoResult

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
            from .._media import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

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
    from ..policy import describe

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
        from ..providers.whisper import pull

        folder = pull(model)
    elif provider == "diffusers" and model:
        from ..providers.diffusers import resolve_folder

        folder = resolve_folder(model, allow_download=True)
    else:
        raise InvalidRequestError(f"cannot pull {name!r}: give whisper:SIZE (whisper:small), whisper:owner/name or "
                                  "diffusers:owner/name; hosted models need no download")  # fmt: skip
    print(f"{name}: {folder}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from datetime import date

    from .._catalog import default_catalog

    if args.action == "pull":
        return _pull(args.name)
    if args.action is not None or args.name is not None:
        raise InvalidRequestError("genai models takes no argument but 'pull MODEL' (genai models pull whisper:small)")
    catalog = default_catalog()
    if args.provider is not None:
        from ..providers import known_providers

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

    from ..testing import Emulator

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
