"""Batches: ``*_many`` on Client and AsyncClient. Results in input order, one typed error per failed item, the budget
holding across the batch, bounded concurrency, cancellation, and a synchronous ``n`` split across backend calls
running them at once."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import genai_sdk as genai
from genai_sdk.testing import Emulator, FakeProvider

from .conftest import fast


def _fake_client(fake: FakeProvider, **settings: Any) -> genai.Client:
    settings.setdefault("image", "fake:painter")
    return fast(genai.Client(ledger="memory://", policy="off", providers={"fake": fake}, **settings))


def _single(fake: FakeProvider, **settings: Any) -> genai.Client:
    """A client whose fake model makes one picture a call, as dall-e-3 does."""
    import dataclasses

    client = _fake_client(fake, image="fake:single", **settings)
    client.catalog.register(dataclasses.replace(fake.describe("single"), max_n=1))
    return client


def test_results_come_in_input_order_with_one_typed_error_per_failed_item(
    client: genai.Client, genai_emulator: Emulator
) -> None:
    genai_emulator.fail("images.generate", "server_error", times=100, when="broken")
    prompts: list[object] = ["a red cube", "a broken vase", {"prompt": "two blue cubes", "n": 2}, 42, "a green cone"]
    results = client.images.generate_many(prompts, concurrency=3, size="256x256")
    assert len(results) == 5
    assert isinstance(results[0], genai.ImageResult) and len(results[0].images) == 1
    assert isinstance(results[1], genai.ProviderUnavailableError) and results[1].status == 500
    assert isinstance(results[2], genai.ImageResult) and len(results[2].images) == 2
    assert isinstance(results[3], genai.InvalidRequestError) and "prompt must be a string" in str(results[3])
    assert isinstance(results[4], genai.ImageResult)
    sent = [call.json["prompt"] for call in genai_emulator.calls("images.generate")]
    assert sorted(set(sent)) == ["a broken vase", "a green cone", "a red cube", "two blue cubes"]
    assert sent.count("a broken vase") == 3  # the item's own retries (max_retries=2), then its error
    assert [i for i, _ in results.failed] == [1, 3] and len(results.succeeded) == 3
    charges = [e for e in client.credits.history() if e.kind == "charge"]
    assert len(charges) == 3 and results.cost.credits == -sum(e.credits for e in charges)


def test_a_budget_that_runs_out_mid_batch_refuses_the_rest_before_sending(
    client: genai.Client, genai_emulator: Emulator
) -> None:
    client.credits.grant(5)  # 1.6 credits a picture: three fit
    results = client.images.generate_many([f"a cat number {i}" for i in range(8)], concurrency=4, size="256x256")
    done = results.succeeded
    refused = [error for _, error in results.failed]
    assert len(done) == 3 and len(refused) == 5
    assert all(isinstance(error, genai.BudgetExceededError) for error in refused)
    assert len(genai_emulator.calls("images.generate")) == 3  # nothing beyond the budget was sent
    assert client.credits.balance() == Decimal("5") - Decimal("4.8") and client.credits.reserved() == 0


def test_concurrency_is_bounded_and_reached() -> None:
    width = 3
    barrier = threading.Barrier(width, timeout=30)  # only passes when `width` items are in flight together
    lock = threading.Lock()
    in_flight = [0, 0]  # now, most

    def step(request: object, n: int) -> int:
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])
        try:
            barrier.wait()
        finally:
            with lock:
                in_flight[0] -= 1
        return n

    fake = FakeProvider().script(*[step] * (2 * width))
    client = _fake_client(fake)
    results = client.images.generate_many([f"p{i}" for i in range(2 * width)], concurrency=width)
    assert [type(r) for r in results] == [genai.ImageResult] * (2 * width)
    assert in_flight[1] == width


def test_a_synchronous_n_split_across_backend_calls_runs_them_at_once() -> None:
    barrier = threading.Barrier(3, timeout=30)  # the three calls of n=3 (one a call) must be in flight together

    def step(request: object, n: int) -> int:
        barrier.wait()
        return n

    fake = FakeProvider().script(step, step, step)
    client = _single(fake)
    result = client.images.generate("a cat", n=3)
    assert len(result.images) == 3 and [call.n for call in fake.calls] == [1, 1, 1]
    assert len({call.idempotency_key for call in fake.calls}) == 3 and result.cost.usd == Decimal("0.03")


def test_a_failed_part_of_a_split_call_fails_it_and_what_was_made_is_spent() -> None:
    """n=3 from a model that makes one a call: two calls make their picture, the third fails after them. The call
    fails, and the two pictures the backend made (and billed) are recorded as spent, not charged and not lost."""
    import itertools

    made = threading.Semaphore(0)
    order = itertools.count()

    def step(request: object, n: int) -> int:
        if next(order) < 2:
            made.release()
            return n
        made.acquire(timeout=30)
        made.acquire(timeout=30)
        raise genai.GenerationFailedError("the model crashed", provider="fake")

    fake = FakeProvider().script(step, step, step)
    client = _single(fake, max_retries=0)
    with pytest.raises(genai.GenerationFailedError, match="crashed"):
        client.images.generate("a cat", n=3)
    [spent] = client.credits.history()
    assert (spent.kind, spent.credits) == ("spent", Decimal(-2)) and "another part of the call failed" in spent.reason
    assert client.credits.reserved() == 0


def test_batch_progress_is_reported_per_item() -> None:
    seen: list[genai.Progress] = []
    client = _fake_client(FakeProvider())
    client.images.generate_many(["a", "b", "c"], concurrency=2, on_progress=seen.append)
    assert [p.completed for p in seen] == [1, 2, 3] and seen[-1].stage == "done" and all(p.total == 3 for p in seen)


def test_items_as_mappings_and_edits_many(client: genai.Client, genai_emulator: Emulator) -> None:
    from PIL import Image as PILImage

    picture = PILImage.new("RGBA", (256, 256), (200, 10, 10, 255))
    results = client.images.edit_many(
        [picture, {"image": picture, "prompt": "a hat instead"}], prompt="add a bird", size="256x256", concurrency=2
    )
    assert all(isinstance(r, genai.ImageResult) for r in results)
    prompts = sorted(call.form["prompt"] for call in genai_emulator.calls("images.edit"))
    assert prompts == ["a hat instead", "add a bird"]
    bad = client.images.generate_many([{"n": 2}])
    assert isinstance(bad[0], genai.InvalidRequestError) and "'prompt'" in str(bad[0])


@pytest.mark.parametrize("concurrency", [0, -1, 1.5, True, 10_000])
def test_bad_concurrency_is_refused(concurrency: object) -> None:
    client = _fake_client(FakeProvider())
    with pytest.raises(genai.InvalidRequestError, match="concurrency"):
        client.images.generate_many(["a"], concurrency=concurrency)  # type: ignore[arg-type]


def test_async_batches_keep_order_and_bound_concurrency() -> None:
    fake = FakeProvider(delay=0.01)
    fake.script(2, genai.GenerationFailedError("no", provider="fake"), 1)  # "a" asks for two pictures

    async def main() -> genai.BatchResults[genai.ImageResult]:
        async with genai.AsyncClient(
            image="fake:x", ledger="memory://", policy="off", providers={"fake": fake}, max_retries=0
        ) as aclient:
            return await aclient.images.generate_many([{"prompt": "a", "n": 2}, "b", "c", "d"], concurrency=1)

    results = asyncio.run(main())
    assert [type(r).__name__ for r in results] == ["ImageResult", "GenerationFailedError", "ImageResult", "ImageResult"]
    assert [call.request.prompt for call in fake.calls] == ["a", "b", "c", "d"]  # one at a time, in order
    assert len(results[0].images) == 2  # type: ignore[union-attr]


def test_cancelling_an_async_batch_stops_items_in_flight_and_leaves_nothing_reserved() -> None:
    fake = FakeProvider(delay=30)

    async def main() -> genai.AsyncClient:
        aclient = genai.AsyncClient(image="fake:x", ledger="memory://", policy="off", providers={"fake": fake})
        task = asyncio.create_task(aclient.images.generate_many([f"p{i}" for i in range(10)], concurrency=3))
        while len(fake.calls) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return aclient

    aclient = asyncio.run(main())
    assert len(fake.calls) == 3  # the items not started never were
    assert asyncio.run(aclient.credits.reserved()) == 0 and asyncio.run(aclient.credits.history()) == []


def test_a_synchronous_batch_interrupted_stops_what_is_in_flight() -> None:
    """Ctrl-C in the calling thread: nothing new starts, items in flight stop at their next report, and the
    interrupt reaches the caller."""
    import os
    import signal

    fake = FakeProvider(delay=30)
    client = _fake_client(fake)

    def interrupt_when_busy() -> None:
        while len(fake.calls) < 2:
            threading.Event().wait(0.01)
        os.kill(os.getpid(), signal.SIGINT)  # a real signal, as Ctrl-C sends

    threading.Thread(target=interrupt_when_busy, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        client.images.generate_many([f"p{i}" for i in range(6)], concurrency=2)
    assert len(fake.calls) == 2 and client.credits.reserved() == 0 and client.credits.history() == []


def test_cli_image_batch_from_a_prompts_file(
    genai_emulator: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from genai_sdk.cli import main

    (tmp_path / "out").mkdir()
    (tmp_path / "prompts.txt").write_text("# product shots\na red kettle\n\na broken lamp\na blue mug\n", encoding="utf-8")
    genai_emulator.fail("images.generate", "bad_request", times=10, when="broken")
    argv = ["image", "--prompts-file", "prompts.txt", "--model", "openai:dall-e-2", "--size", "256x256"]
    assert main([*argv, "-o", "out/{i}-{slug}.png", "--concurrency", "2"]) == 1  # one item failed
    captured = capsys.readouterr()
    assert sorted(captured.out.split()) == ["out/0-a_red_kettle.png", "out/2-a_blue_mug.png"]
    assert "failed: item 1 ('a broken lamp')" in captured.err and "2 of 3 done" in captured.err
    assert genai.Image.from_path(tmp_path / "out" / "2-a_blue_mug.png").size == (256, 256)
    assert main([*argv, "-n", "2", "-o", "out/p.png"]) == 1  # {i} and {j} added to the pattern
    assert sorted(capsys.readouterr().out.split()) == ["out/p0_0.png", "out/p0_1.png", "out/p2_0.png", "out/p2_1.png"]
    assert main(["image", "a cat", "--prompts-file", "prompts.txt"]) == 2
    assert "not both" in capsys.readouterr().err
    (tmp_path / "empty.txt").write_text("# nothing\n", encoding="utf-8")
    assert main(["image", "--prompts-file", "empty.txt"]) == 2
    assert "holds no prompts" in capsys.readouterr().err


def test_cli_transcribes_several_files(genai_emulator: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("av", reason="audio needs PyAV")
    from genai_sdk.cli import main

    for name in ("one", "two"):
        assert main(["speak", f"Number {name} here.", "-o", f"{name}.wav", "--model", "openai:tts-1"]) == 0
    capsys.readouterr()
    assert main(["transcribe", "one.wav", "two.wav", "--model", "openai:whisper-1", "--format", "srt"]) == 0
    assert sorted(capsys.readouterr().out.split()) == ["one.srt", "two.srt"]
    assert "Number two here." in (tmp_path / "two.srt").read_text(encoding="utf-8")
    assert main(["transcribe", "one.wav", "missing.wav", "--model", "openai:whisper-1", "-o", "t{i}.txt"]) == 1
    captured = capsys.readouterr()
    assert captured.out.split() == ["t0.txt"] and "failed: item 1 ('missing.wav')" in captured.err
    assert main(["transcribe", "one.wav", "two.wav", "-o", "same.txt"]) == 2
    assert "{stem} or {i}" in capsys.readouterr().err


def test_a_batch_takes_a_list_not_one_prompt_and_a_broken_progress_display_loses_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeProvider()
    client = _fake_client(fake)
    for wrong in ("a cat", b"a cat", 42):
        with pytest.raises(genai.InvalidRequestError, match="a batch takes a list"):
            client.images.generate_many(wrong)  # type: ignore[arg-type]
    assert fake.calls == []

    def broken(progress: genai.Progress) -> None:
        raise ValueError("the terminal went away")

    results = client.images.generate_many(["a", "b", "c"], on_progress=broken)
    assert len(results.succeeded) == 3 and "on_progress raised ValueError" in caplog.text


def test_a_fallback_inside_a_batch_item_is_not_cancelled_by_the_hop_before(genai_emulator: Emulator) -> None:
    genai_emulator.fail("images.generate", "server_error", times=10, when="lamp")
    client = fast(genai.Client(image=["openai:dall-e-2", "replicate:black-forest-labs/flux-schnell"], max_retries=1,
                               policy="off"))  # fmt: skip
    results = client.images.generate_many(["a lamp", "a mug"], concurrency=2, size="256x256")
    lamp, mug = results
    assert isinstance(lamp, genai.ImageResult) and lamp.model == "replicate:black-forest-labs/flux-schnell"
    assert isinstance(mug, genai.ImageResult) and mug.model == "openai:dall-e-2"
    assert genai_emulator.calls("replicate.predictions.cancel") == []


def test_cli_refuses_two_files_written_to_one_output(genai_emulator: Emulator, capsys: pytest.CaptureFixture[str],
                                                      tmp_path: Path) -> None:  # fmt: skip
    from genai_sdk.cli import main

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "talk.wav").write_bytes(b"RIFF")
    assert main(["transcribe", "a/talk.wav", "b/talk.wav", "--model", "openai:whisper-1"]) == 2
    assert "talk.txt for several files: add {i}" in capsys.readouterr().err
    assert genai_emulator.calls() == []
