"""Google's Gemini API (Imagen and Veo) through the emulator over real HTTP: requests as Google documents them,
sizes, lifecycle, safety filters, errors and retries, the core following Veo's long operation, and what is spent
when a video cannot be delivered or is given up."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from dataclasses import replace
from decimal import Decimal
from typing import Any, cast

import pytest

import genai_sdk as genai
from genai_sdk.testing import Emulator
from genai_sdk.testing._api_google import GoogleApi  # the emulator's Google module, for its controls
from genai_sdk.testing._media_maker import make_image

pytest.importorskip("httpx", reason="the Google tests need httpx: pip install -e '.[dev]'")

IMAGEN = "google:imagen-4.0-generate-001"
FAST = "google:imagen-4.0-fast-generate-001"
ULTRA = "google:imagen-4.0-ultra-generate-001"
VEO = "google:veo-3.1-generate-001"
VEO3 = "google:veo-3.0-generate-001"


def _google(emulator: Emulator) -> GoogleApi:
    return cast(GoogleApi, emulator.api("google"))


def _client(*revived: str, **kwargs: Any) -> genai.Client:
    """A client on the emulator; ``revived`` models, which Google has retired, registered as still served (as a
    gateway that serves them would be)."""
    client = genai.Client(ledger="memory://", **kwargs)
    for model_id in revived:
        model = client.catalog.get(model_id)
        assert model is not None and model.retired_on is not None
        client.catalog.register(replace(model, retired_on=None, replacement=None))
    return client


def _spent(client: genai.Client) -> list[genai.LedgerEntry]:
    return [e for e in client.credits.history() if e.kind == "spent"]


# -- Imagen ---------------------------------------------------------------------------------------------------------


def test_imagen_pictures_are_asked_for_as_google_documents_and_charged_per_picture(genai_emulator: Emulator) -> None:
    client = _client(IMAGEN, image=IMAGEN)
    result = client.images.generate("an avocado couch", n=2, size="1408x768", seed=7,
                                    provider_options={"google": {"person_generation": "dont_allow"}})  # fmt: skip
    assert [image.size for image in result.images] == [(1408, 768), (1408, 768)]
    assert result.images[0].data != result.images[1].data
    (call,) = genai_emulator.calls("google.predict")
    assert call.path == "/v1beta/models/imagen-4.0-generate-001:predict"
    assert call.headers["x-goog-api-key"] == genai_emulator.api_key and "authorization" not in call.headers
    assert call.json == {"instances": [{"prompt": "an avocado couch"}], "parameters": {
        "sampleCount": 2, "aspectRatio": "16:9", "includeRaiReason": True, "personGeneration": "dont_allow"}}
    assert any("does not support seed" in w for w in result.warnings), "the Gemini API takes no seed"
    assert result.cost.usd == Decimal("0.08") and not result.cost.estimated, "0.04 USD a picture"
    assert client.credits.history()[-1].credits == -result.cost.credits


def test_a_2k_size_asks_for_2k_pictures_and_the_fast_model_refuses_it_before_sending(genai_emulator: Emulator) -> None:
    client = _client(IMAGEN, FAST)
    result = client.images.generate("a lighthouse", size="1536x2816", model=IMAGEN)
    assert result.image.size == (1536, 2816)
    assert genai_emulator.calls("google.predict")[-1].json["parameters"]["sampleImageSize"] == "2K"
    with pytest.raises(genai.InvalidRequestError, match="1536x2816"):
        client.images.generate("a lighthouse", size="1536x2816", model=FAST)
    with pytest.raises(genai.InvalidRequestError, match="1000x1000"):
        client.images.generate("a lighthouse", size="1000x1000", model=IMAGEN)
    assert len(genai_emulator.calls("google.predict")) == 1
    fast = client.images.generate("a lighthouse", size="768x1408", model=FAST)
    assert fast.image.size == (768, 1408) and fast.cost.usd == Decimal("0.02")


def test_more_pictures_than_a_request_makes_are_split(genai_emulator: Emulator) -> None:
    client = _client(ULTRA, IMAGEN)
    ultra = client.images.generate("a fox", n=3, model=ULTRA)
    assert len(ultra.images) == 3 and ultra.cost.usd == Decimal("0.18")
    assert [c.json["parameters"]["sampleCount"] for c in genai_emulator.calls("google.predict")] == [1, 1, 1]
    genai_emulator.clear()
    standard = client.images.generate("a fox", n=6, model=IMAGEN)
    assert len(standard.images) == 6
    assert sorted(c.json["parameters"]["sampleCount"] for c in genai_emulator.calls("google.predict")) == [2, 4]


def test_the_imagen_models_are_retired_and_refused_before_anything_is_sent(genai_emulator: Emulator) -> None:
    client = _client(image=IMAGEN)
    with pytest.raises(genai.ModelRetiredError, match="retired on 2026-08-17") as raised:
        client.images.generate("a fox")
    assert raised.value.retired_on == "2026-08-17"
    assert genai_emulator.calls() == [] and client.credits.history() == []


def test_withheld_pictures_are_not_charged_and_all_withheld_is_a_content_policy_error(genai_emulator: Emulator) -> None:
    client = _client(IMAGEN, image=IMAGEN)
    _google(genai_emulator).withhold_next_pictures(1)
    result = client.images.generate("three pears", n=3)
    assert len(result.images) == 2 and result.cost.usd == Decimal("0.08")
    assert any("withheld 1 of 3 pictures" in w and "Responsible AI" in w for w in result.warnings)
    charged = client.credits.history()
    with pytest.raises(genai.ContentPolicyError, match="withheld every picture") as raised:
        client.images.generate("a blockedpicture of pears", n=2)
    assert raised.value.source == "provider" and raised.value.stage == "output"
    after = client.credits.history()
    assert after[:-1] == charged and (after[-1].kind, after[-1].credits) == ("refusal", Decimal(0)), "recorded, not charged"
    assert client.credits.reserved() == 0


def test_a_prompt_google_refuses_is_a_content_policy_error(genai_emulator: Emulator) -> None:
    client = _client(IMAGEN, image=IMAGEN)
    with pytest.raises(genai.ContentPolicyError, match="Responsible AI") as raised:
        client.images.generate("a blockedword on a wall")
    assert raised.value.stage == "prompt" and raised.value.source == "provider"
    assert len(genai_emulator.calls("google.predict")) == 1, "a refusal is not retried"


def test_a_bad_option_is_refused_before_anything_is_sent(genai_emulator: Emulator) -> None:
    client = _client(IMAGEN, image=IMAGEN)
    with pytest.raises(genai.InvalidRequestError, match=r"person_generation.*'dont_allow', 'allow_adult', 'allow_all'"):
        client.images.generate("a fox", provider_options={"google": {"person_generation": "everyone"}})
    with pytest.raises(genai.InvalidRequestError, match="did you mean 'output_mime_type'"):
        client.images.generate("a fox", provider_options={"google": {"output_mime": "image/png"}})
    assert genai_emulator.calls() == []
    jpeg = client.images.generate("a fox", provider_options={"google": {"output_mime_type": "image/jpeg"}})
    assert jpeg.image.media_type == "image/jpeg"


# -- errors and retries -----------------------------------------------------------------------------------------


def test_a_429_waits_as_long_as_googles_retry_info_says(genai_emulator: Emulator) -> None:
    client = _client(IMAGEN, image=IMAGEN, max_retries=2)
    genai_emulator.fail("google.predict", "rate_limit", times=1, retry_after=0.3)
    started = time.monotonic()
    result = client.images.generate("a fox")
    assert time.monotonic() - started >= 0.3, "RetryInfo's retryDelay (0.3s) is honoured: there is no Retry-After"
    assert len(result.images) == 1 and len(genai_emulator.calls("google.predict")) == 2


def test_overloaded_and_internal_errors_are_retried(genai_emulator: Emulator) -> None:
    client = _client(IMAGEN, image=IMAGEN, max_retries=2)
    genai_emulator.fail("google.predict", "unavailable", times=1)
    genai_emulator.fail("google.predict", "server_error", times=1)
    assert len(client.images.generate("a fox").images) == 1
    assert [c.status for c in genai_emulator.calls("google.predict")] == [503, 500, 200]


def test_a_wrong_key_is_an_authentication_error_that_never_shows_the_key(
    genai_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "AIzaSyD-not-the-right-key-0123456789abc"
    monkeypatch.setenv("GEMINI_API_KEY", secret)
    monkeypatch.delenv("GOOGLE_API_KEY")
    client = _client(IMAGEN, image=IMAGEN)
    with pytest.raises(genai.AuthenticationError, match="API key not valid.*check GEMINI_API_KEY") as raised:
        client.images.generate("a fox")
    assert secret not in str(raised.value) and secret not in repr(raised.value)
    assert "[redacted]" in genai.ProviderError(f"echo {secret}").message
    monkeypatch.setenv("GOOGLE_API_KEY", secret)  # it wins, and the message names it
    with pytest.raises(genai.AuthenticationError, match="check GOOGLE_API_KEY"):
        _client(IMAGEN, image=IMAGEN).images.generate("a fox")
    monkeypatch.delenv("GEMINI_API_KEY")
    monkeypatch.delenv("GOOGLE_API_KEY")
    with pytest.raises(genai.ConfigError, match="GEMINI_API_KEY"):
        _client(IMAGEN, image=IMAGEN).images.generate("a fox")


def test_google_api_key_wins_over_gemini_api_key(genai_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "wrong-key-0000000000")
    monkeypatch.setenv("GOOGLE_API_KEY", str(genai_emulator.api_key))
    assert len(_client(IMAGEN, image=IMAGEN).images.generate("a fox").images) == 1


def test_a_model_google_does_not_know_is_a_config_error(genai_emulator: Emulator) -> None:
    client = _client(IMAGEN)
    model = client.catalog.get(IMAGEN)
    assert model is not None
    client.catalog.register(replace(model, name="imagen-9.0-generate-001", retired_on=None))
    with pytest.raises(genai.ConfigError, match="not found"):
        client.images.generate("a fox", model="google:imagen-9.0-generate-001")


# -- Veo: a long operation the core follows ------------------------------------------------------------------------


def test_a_veo_video_is_started_polled_downloaded_and_charged_by_the_second(genai_emulator: Emulator) -> None:
    client = _client(video=VEO)
    result = client.videos.generate("a panda playing guitar", size="720x1280", seconds=6, negative_prompt="rain")
    (start,) = genai_emulator.calls("google.predict_long_running")
    assert start.path == "/v1beta/models/veo-3.1-generate-001:predictLongRunning"
    assert start.json == {"instances": [{"prompt": "a panda playing guitar"}], "parameters": {
        "aspectRatio": "9:16", "resolution": "720p", "negativePrompt": "rain", "durationSeconds": 6}}
    assert len(genai_emulator.calls("google.operations.get")) == 1
    assert result.video.duration == pytest.approx(6, abs=0.5) and (result.video.width, result.video.height) == (36, 64)
    assert result.cost.usd == Decimal("0.40") * Decimal(str(round(result.video.duration or 0, 3))), "0.40 USD a second"
    assert result.request_ids[0].startswith("models/veo-3.1-generate-001/operations/")
    (download,) = genai_emulator.calls("google.files.download")
    assert download.headers["x-goog-api-key"] == genai_emulator.api_key and download.status == 302


def test_the_key_goes_with_the_download_but_not_where_it_redirects() -> None:
    """Google's video URI needs the key and redirects to storage: the key must not follow the redirect."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from genai_sdk._flow import Fetch, JsonApi
    from genai_sdk._http import AddressGuard

    seen: dict[str, str | None] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen[self.path.split("?")[0]] = self.headers.get("x-goog-api-key")
            if self.path.startswith("/v1beta/files/"):
                self.send_response(302)
                self.send_header("Location", "/storage/video.mp4")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"mp4!")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    api = JsonApi(provider="google", base_url=f"{base}/v1beta/", headers={"x-goog-api-key": "AIza-secret-key"},
                  timeout=10, answer_cap=1 << 20, download_cap=1 << 20, guard=AddressGuard.for_base_url(base),
                  error=lambda response: genai.ProviderError("unexpected"))  # fmt: skip
    try:
        data = api.download(Fetch(f"{base}/v1beta/files/abc:download?alt=media", 10, authorized=True))
        assert data == b"mp4!"
        assert seen == {"/v1beta/files/abc:download": "AIza-secret-key", "/storage/video.mp4": None}
        seen.clear()
        api.download(Fetch(f"{base}/v1beta/files/abc:download?alt=media", 10))
        assert seen["/v1beta/files/abc:download"] is None, "only a step that asks for it is signed"
    finally:
        api.close()
        server.shutdown()
        server.server_close()


def test_veo_3_makes_8_seconds_and_takes_no_length(genai_emulator: Emulator) -> None:
    client = _client(VEO3, video=VEO3)
    with pytest.raises(genai.InvalidRequestError, match="it makes 8-second videos"):
        client.videos.generate("a panda", seconds=5)
    with pytest.raises(genai.InvalidRequestError, match="1080x1920"):
        client.videos.generate("a panda", size="1080x1920")
    result = client.videos.generate("a panda", fps=30)
    assert "durationSeconds" not in genai_emulator.calls("google.predict_long_running")[0].json["parameters"]
    assert result.video.duration == pytest.approx(8, abs=0.5) and result.cost.usd is not None
    assert any("24 frames a second" in w for w in result.warnings)
    assert genai_emulator.calls("google.predict_long_running")[0].json["parameters"]["resolution"] == "720p"


def test_the_core_waits_for_an_operation_that_takes_several_polls(genai_emulator: Emulator) -> None:
    _google(genai_emulator).polls_to_finish = 3
    client = _client(video=VEO)
    result = client.videos.generate("a slow panda", seconds=4)
    assert len(genai_emulator.calls("google.operations.get")) == 3
    assert result.video.duration == pytest.approx(4, abs=0.5)


def test_polls_that_fail_are_tried_again_and_one_operation_is_made(genai_emulator: Emulator) -> None:
    genai_emulator.fail("google.operations.get", "unavailable", times=2)  # then the third poll finds it done
    client = _client(video=VEO)
    result = client.videos.generate("a panda", seconds=4)
    assert result.video.data and len(genai_emulator.calls("google.predict_long_running")) == 1


def test_a_download_that_fails_is_downloaded_again_never_made_again(genai_emulator: Emulator) -> None:
    genai_emulator.fail("google.files.download", "server_error", times=3)  # three tries in one attempt, then a retry
    client = _client(video=VEO, max_retries=2)
    result = client.videos.generate("a panda", seconds=4)
    assert result.video.data and len(genai_emulator.calls("google.predict_long_running")) == 1
    assert [e.kind for e in client.credits.history()] == ["charge"]


def test_a_download_that_never_succeeds_is_recorded_as_spent(genai_emulator: Emulator) -> None:
    genai_emulator.fail("google.files.download", "server_error", times=100)
    client = _client(video=VEO, max_retries=1)
    with pytest.raises(genai.ProviderError):
        client.videos.generate("a panda", seconds=4)
    [entry] = _spent(client)
    assert entry.usd == Decimal("1.60"), "four seconds made and billed, at 0.40 USD a second"
    assert len(genai_emulator.calls("google.predict_long_running")) == 1 and client.credits.reserved() == 0


def test_a_failed_or_filtered_operation_is_not_charged(genai_emulator: Emulator) -> None:
    client = _client(video=VEO)
    _google(genai_emulator).fail_next_operation("Internal error while generating (injected).")
    with pytest.raises(genai.GenerationFailedError, match="Internal error while generating") as failed:
        client.videos.generate("a panda", seconds=4)
    assert failed.value.request_id is not None and failed.value.request_id.startswith("models/veo-3.1")
    with pytest.raises(genai.ContentPolicyError, match="You have not been charged") as filtered:
        client.videos.generate("a blockedpicture panda", seconds=4)
    assert filtered.value.stage == "output" and filtered.value.source == "provider"
    assert [(e.kind, e.credits) for e in client.credits.history()] == [("refusal", Decimal(0))], "recorded, never charged"
    assert client.credits.reserved() == 0


def test_a_call_past_its_timeout_leaves_the_operation_running_and_counts_it_spent(genai_emulator: Emulator) -> None:
    _google(genai_emulator).polls_to_finish = 1000
    client = _client(video=VEO, timeout=2)
    started = time.monotonic()
    with pytest.raises(genai.ProviderUnavailableError, match="could not be canceled .* counted as spent"):
        client.videos.generate("a slow panda", seconds=8)
    assert time.monotonic() - started < 8
    [entry] = _spent(client)
    assert entry.usd == Decimal("3.20") and client.credits.reserved() == 0
    assert len(genai_emulator.calls("google.predict_long_running")) == 1


def test_a_start_whose_answer_is_lost_is_not_sent_again_and_is_spent(genai_emulator: Emulator) -> None:
    genai_emulator.fail("google.predict_long_running", "drop")
    client = _client(video=VEO, max_retries=3)
    with pytest.raises(genai.ProviderError, match="may have been started, so it was not started again"):
        client.videos.generate("a panda", seconds=4)
    assert len(genai_emulator.calls("google.predict_long_running")) == 1
    assert [e.usd for e in _spent(client)] == [Decimal("1.60")]


def test_a_refused_start_is_not_spent(genai_emulator: Emulator) -> None:
    genai_emulator.fail("google.predict_long_running", "bad_request")
    client = _client(video=VEO)
    with pytest.raises(genai.InvalidRequestError):
        client.videos.generate("a panda", seconds=4)
    assert client.credits.history() == []


def test_an_async_video_and_a_cancelled_one(genai_emulator: Emulator) -> None:
    async def main() -> None:
        async with genai.AsyncClient(video=VEO, ledger="memory://", timeout=60) as client:
            result = await client.videos.generate("an async panda", seconds=4)
            assert result.video.duration == pytest.approx(4, abs=0.5) and result.cost.usd == Decimal("1.60")
            _google(genai_emulator).polls_to_finish = 1000
            task = asyncio.create_task(client.videos.generate("a long panda", seconds=8))
            while len(genai_emulator.calls("google.operations.get")) < 2:
                await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await client.credits.reserved() == 0
            spent = [e for e in await client.credits.history() if e.kind == "spent"]
            assert [e.usd for e in spent] == [Decimal("3.20")], "Google cannot cancel it: it runs on and is billed"

    asyncio.run(main())


def test_image_to_video_sends_the_picture_inline(genai_emulator: Emulator) -> None:
    client = _client(video=VEO)
    picture = genai.Image.from_bytes(make_image("a panda", 64, 64))
    client.videos.generate("the panda waves", seconds=4, image=picture)
    instance = genai_emulator.calls("google.predict_long_running")[0].json["instances"][0]
    assert instance["image"] == {"bytesBase64Encoded": base64.b64encode(picture.data).decode(), "mimeType": "image/png"}


# -- what a review found: retries, interrupts and lost answers never pay twice or go unrecorded --------------------


def test_polls_that_keep_failing_leave_the_operation_to_the_retry(
    genai_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("genai_sdk._flow.MAX_POLL_FAILURES", 1)
    genai_emulator.fail("google.operations.get", "unavailable", times=2)  # the first attempt gives up after two
    client = _client(video=VEO, max_retries=2)
    result = client.videos.generate("a panda", seconds=4)
    assert result.video.data and len(genai_emulator.calls("google.predict_long_running")) == 1, "never a second video"
    assert [e.kind for e in client.credits.history()] == ["charge"], "the retry delivered it: nothing spent"


def test_a_start_that_never_left_is_retried_and_not_spent(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-test-key-0000000000")
    client = _client(video=VEO, max_retries=1)
    with pytest.raises(genai.ProviderUnavailableError, match="could not reach google") as raised:
        client.videos.generate("a panda", seconds=4)
    assert "may have been started" not in str(raised.value)
    assert client.credits.history() == [] and client.credits.reserved() == 0


@pytest.mark.parametrize("fault", ["lost_answer", "malformed_json", "json_list"])
def test_an_imagen_answer_lost_or_unusable_is_spent_not_asked_for_again(genai_emulator: Emulator, fault: str) -> None:
    genai_emulator.fail("google.predict", fault)
    client = _client(IMAGEN, image=IMAGEN, max_retries=3)
    with pytest.raises(genai.ProviderError) as raised:
        client.images.generate("a fox", n=2)
    assert not raised.value.retryable and len(genai_emulator.calls("google.predict")) == 1
    assert [e.usd for e in _spent(client)] == [Decimal("0.08")], "two pictures made and billed, not delivered"


@pytest.mark.parametrize(("status", "starts", "spent"), [(502, 1, [Decimal("1.60")]), (500, 2, [])])
def test_a_gateway_error_on_start_may_have_started_it_googles_own_500_did_not(
    genai_emulator: Emulator, status: int, starts: int, spent: list[Decimal]
) -> None:
    genai_emulator.fail("google.predict_long_running", "server_error", status=status)
    client = _client(video=VEO, max_retries=2)
    if spent:
        with pytest.raises(genai.ProviderError, match="may have been started"):
            client.videos.generate("a panda", seconds=4)
    else:
        assert client.videos.generate("a panda", seconds=4).video.data
    assert len(genai_emulator.calls("google.predict_long_running")) == starts
    assert [e.usd for e in _spent(client)] == spent


def test_a_task_cancelled_during_the_download_counts_the_video_spent(genai_emulator: Emulator) -> None:
    genai_emulator.fail("google.files.download", "slow", delay=5)

    async def main() -> None:
        async with genai.AsyncClient(video=VEO, ledger="memory://", timeout=60) as client:
            task = asyncio.create_task(client.videos.generate("a panda", seconds=4))
            while not genai_emulator.calls("google.operations.get"):
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # the download has begun, and waits on the slow answer
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await client.credits.reserved() == 0
            spent = [e for e in await client.credits.history() if e.kind == "spent"]
            assert [e.usd for e in spent] == [Decimal("1.60")], "made and billed: the caller gave up on its delivery"

    asyncio.run(main())


def test_the_wait_reports_progress_and_an_on_progress_that_raises_stops_it(genai_emulator: Emulator) -> None:
    _google(genai_emulator).polls_to_finish = 1000
    seen: list[genai.Progress] = []

    def watch(progress: genai.Progress) -> None:
        seen.append(progress)
        if progress.stage.startswith("waiting for operation") and progress.completed > 1.5:
            raise KeyboardInterrupt  # the user's Ctrl-C arrives through the callback

    client = _client(video=VEO, timeout=30)
    with pytest.raises(KeyboardInterrupt):
        client.videos.generate("a panda", seconds=4, on_progress=watch)
    waits = [p for p in seen if p.stage.startswith("waiting for operation")]
    assert len(waits) >= 2 and 0 < (waits[0].total or 0) <= 30, "seconds waited, of the time the call has"
    assert [e.usd for e in _spent(client)] == [Decimal("1.60")], "Google cannot cancel it: it runs on and is billed"
    assert client.credits.reserved() == 0


def test_google_error_bodies_of_every_shape_map_to_the_sdks_errors() -> None:
    import httpx

    from genai_sdk.providers.google import GoogleProvider

    provider = GoogleProvider(genai.Client(ledger="memory://").settings,
                              {"GEMINI_API_KEY": "AIza-test-key-0000000000", "GOOGLE_GEMINI_BASE_URL": "http://127.0.0.1:9"})  # fmt: skip

    def error(status: int, body: object, path: str = "/v1beta/models/veo-3.1-generate-001:predictLongRunning") -> Any:
        request = httpx.Request("POST", f"http://127.0.0.1:9{path}")
        return provider._error(httpx.Response(status, json=body, request=request))

    limited = error(429, {"error": {"code": 429, "message": "Quota exceeded. Please retry in 813.26ms.", "details": 5}})
    assert isinstance(limited, genai.RateLimitError) and limited.retry_after == pytest.approx(0.81326)
    wrapped = error(400, [{"error": {"code": 400, "message": "Bad aspectRatio", "status": "INVALID_ARGUMENT"}}])
    assert isinstance(wrapped, genai.InvalidRequestError) and "400 INVALID_ARGUMENT: Bad aspectRatio" in str(wrapped)
    gone = error(404, {"error": {"code": 404, "message": "Operation not found."}}, "/v1beta/models/veo/operations/abc")
    assert type(gone) is genai.ProviderError and "operation or its file is gone" in str(gone)
    unknown = error(404, {"error": {"code": 404, "message": "models/x is not found"}})
    assert isinstance(unknown, genai.ConfigError)
    provider.close()


def test_an_operation_url_on_another_host_is_not_followed_with_the_key() -> None:
    from genai_sdk._flow import JsonApi
    from genai_sdk._http import AddressGuard

    api = JsonApi(provider="google", base_url="http://127.0.0.1:9/v1beta/", headers={"x-goog-api-key": "AIza-secret"},
                  timeout=10, answer_cap=1 << 20, download_cap=1 << 20, guard=AddressGuard.for_base_url("http://127.0.0.1:9"),
                  error=lambda response: genai.ProviderError("unexpected"))  # fmt: skip
    try:
        assert api.url("models/veo/operations/abc") == "http://127.0.0.1:9/v1beta/models/veo/operations/abc"
        assert api.url("http://127.0.0.1:9/v1beta/files/x") == "http://127.0.0.1:9/v1beta/files/x"
        with pytest.raises(genai.ProviderError, match="another host"):
            api.url("https://elsewhere.example/v1beta/models/veo/operations/abc")
    finally:
        api.close()


def test_a_registered_video_model_with_a_size_google_does_not_make_is_refused(genai_emulator: Emulator) -> None:
    client = _client()
    model = client.catalog.get(VEO)
    assert model is not None
    client.catalog.register(replace(model, name="veo-square", sizes=("960x960",)))
    with pytest.raises(genai.InvalidRequestError, match="960x960"):
        client.videos.generate("a panda", model="google:veo-square", size="960x960")
    assert genai_emulator.calls() == []
