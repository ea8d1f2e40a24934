"""Speech that plays while it is made: ``client.speech.stream(text)`` yields encoded audio as the backend produces it
(OpenAI's streamed speech; Piper sentence by sentence), through the same path as every call: validation, the
prompt's check, a reservation, retries until the first audio arrives, and one charge at the end.

    with client.speech.stream("Hello there. How are you?", format="wav") as stream:
        for chunk in stream:
            player.write(chunk)
    stream.result.cost

A stream the caller stops early is charged for what the backend did: a hosted backend bills the text it was sent,
a local one its compute time; the history says the audio was not all delivered.
"""

from __future__ import annotations

import io
import logging
import queue
import struct
import threading
import time
import weakref
from collections.abc import AsyncIterator, Generator, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, cast

from ._batch import ITEM_CANCEL, SEGMENTS, Switch
from ._errors import InvalidRequestError, UnsupportedError
from ._media import Audio, make_provenance
from ._requests import Cost, Segment, SpeechResult, SynthesizeRequest, TranscribeRequest, Transcript
from ._retry import Attempt, call_with_retry
from .credits._pricing import Notices, Usage
from .providers.base import CallContext

if TYPE_CHECKING:
    from ._pipeline import Pipeline

STREAM_FORMATS = ("pcm", "wav", "mp3")
T = TypeVar("T")
log = logging.getLogger("genai_sdk")


class PcmEncoder:
    """16-bit mono PCM chunks in, the requested format out, chunk by chunk: raw PCM, WAV with a header of unknown
    length (what players of a pipe expect), or MP3 frames."""

    def __init__(self, fmt: str, rate: int) -> None:
        self.fmt, self.rate = fmt, rate
        self._started = False
        self._container: Any = None
        if fmt == "mp3":
            import av

            self._buffer = io.BytesIO()
            # No Xing header: the muxer would seek back to the start to write it, and the start is already sent.
            self._container = av.open(self._buffer, mode="w", format="mp3", options={"write_xing": "0"})
            self._stream = self._container.add_stream("libmp3lame", rate=rate)
            self._stream.layout = "mono"
            self._resampler = av.AudioResampler(format=self._stream.format.name, layout="mono", rate=rate)

    def add(self, pcm: bytes) -> bytes:
        if self.fmt == "pcm":
            return pcm
        if self.fmt == "wav":
            head = b"" if self._started else _wav_header(self.rate)
            self._started = True
            return head + pcm
        return self._mp3(pcm)

    def finish(self) -> bytes:
        if self.fmt != "mp3" or self._container is None:
            return b"" if self._started or self.fmt == "pcm" else self.add(b"")
        return self._mp3(None)

    def _mp3(self, pcm: bytes | None) -> bytes:
        import av
        import numpy as np

        if pcm is None:
            frames = [*self._resampler.resample(None), None]  # None: flush the encoder
        else:
            frame = av.AudioFrame.from_ndarray(np.frombuffer(pcm, dtype="<i2").reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = self.rate
            frames = self._resampler.resample(frame)
        for converted in frames:
            self._container.mux(self._stream.encode(converted))
        if pcm is None:
            self._container.close()
            self._container = None
        data = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return data


def _wav_header(rate: int) -> bytes:
    """A WAV header whose sizes say "unknown" (0xFFFFFFFF): the length of a stream is known only at its end."""
    unknown = 0xFFFFFFFF
    return (
        b"RIFF" + struct.pack("<I", unknown) + b"WAVE" + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data" + struct.pack("<I", unknown)
    )  # fmt: skip


class _Outcome:
    """What a stream's generator tells its stream (kept apart, so that an abandoned stream is freed at once and its
    generator closed, settling its charge)."""

    def __init__(self) -> None:
        self.result: Any = None
        self.first_audio: float | None = None


class _OneReader:
    """A stream has one reader: a second thread asking for the next item at the same moment is refused, typed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        if not self._lock.acquire(blocking=False):
            raise InvalidRequestError("a stream has one reader: another thread is reading it now")

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()


class SpeechStream:
    """Encoded audio chunks (bytes) as they are made; ``result`` is the :class:`SpeechResult` once the stream ends
    (the whole audio, the cost). Closing it early stops the backend's work."""

    def __init__(self, pipeline: Pipeline, request: SynthesizeRequest) -> None:
        self._outcome = _Outcome()
        self._chunks = _speak(pipeline, request, self._outcome)
        self._reader = _OneReader()

    @property
    def result(self) -> SpeechResult | None:
        return cast("SpeechResult | None", self._outcome.result)

    @property
    def first_audio(self) -> float | None:
        """Seconds from the call to its first audio."""
        return self._outcome.first_audio

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        with self._reader:
            return next(self._chunks)

    def close(self) -> None:
        self._chunks.close()

    def __enter__(self) -> SpeechStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _AsyncStream(Generic[T]):
    """A blocking stream read from an event loop, a thread at a time: a cancelled read finishes in its thread (the
    item it was making is dropped) before the stream is closed."""

    def __init__(self, sync: SpeechStream | TranscriptStream) -> None:
        self._sync = sync
        self._pending: Any = None

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        import asyncio

        read = asyncio.ensure_future(asyncio.to_thread(next, self._sync, None))
        try:
            item = await asyncio.shield(read)
        except asyncio.CancelledError:
            self._pending = read
            raise
        if item is None:
            raise StopAsyncIteration
        return cast(T, item)

    async def aclose(self) -> None:
        import asyncio
        import contextlib

        if self._pending is not None:
            with contextlib.suppress(BaseException):
                await self._pending
            self._pending = None
        await asyncio.to_thread(self._sync.close)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class AsyncSpeechStream(_AsyncStream[bytes]):
    """:class:`SpeechStream` for ``async for``: the backend's work runs in a thread, one chunk at a time."""

    def __init__(self, pipeline: Pipeline, request: SynthesizeRequest) -> None:
        self._speech = SpeechStream(pipeline, request)
        super().__init__(self._speech)

    @property
    def result(self) -> SpeechResult | None:
        return self._speech.result

    @property
    def first_audio(self) -> float | None:
        return self._speech.first_audio



def _speak(pipeline: Pipeline, request: SynthesizeRequest, outcome: _Outcome) -> Generator[bytes, None, None]:
    if request.format not in STREAM_FORMATS:
        raise InvalidRequestError(f"format={request.format!r} cannot be streamed: use one of {', '.join(STREAM_FORMATS)}")
    started = time.monotonic()
    deadline = pipeline._deadline(request)
    plan = pipeline.build(request)
    provider, model = plan.provider, plan.model
    opener = getattr(provider, "stream_synthesize", None)
    if opener is None:
        raise UnsupportedError(f"{model.id} cannot stream speech: use client.speech.synthesize")
    request_id, account, estimate, _ = pipeline._prepare(plan, request)
    pipeline.plan.prepare(pipeline.ledger, account, pipeline.clock())
    reservation = pipeline.ledger.reserve(account, estimate.credits, estimate.usd, request_id, model.id)
    pcm, sent, compute, rate = bytearray(), 0, 0.0, 0
    encoder: PcmEncoder | None = None
    chunks: Iterator[tuple[bytes, int]] | None = None
    finished = False
    try:
        for index, text in enumerate(plan.parts):  # the backend's length limit may split the text

            def first(a: Attempt, text: str = text, index: int = index
                      ) -> tuple[Iterator[tuple[bytes, int]], bytes, int, float]:  # fmt: skip
                limiter = pipeline.limiter
                slots = limiter.acquire(model.id, deadline.remaining) if limiter else None
                try:  # the model is loaded by the opener: only the backend's own work is timed (and charged)
                    chunks = opener(model, request, text, CallContext(f"{request_id}-{index}", a.timeout, a.number))
                    began = time.perf_counter()
                    data, chunk_rate = next(chunks, (b"", 0))
                    return chunks, data, chunk_rate, time.perf_counter() - began
                finally:
                    if limiter is not None and slots:
                        limiter.release(slots)

            chunks, data, chunk_rate, spent = call_with_retry(first, pipeline.retry, deadline, provider=model.provider)
            compute += spent
            sent += len(text)
            while True:
                if chunk_rate:
                    if rate and chunk_rate != rate:
                        raise InvalidRequestError(f"{model.id} changed its sample rate mid-stream ({rate} to {chunk_rate})")
                    rate = chunk_rate
                if data:
                    if encoder is None:
                        encoder = PcmEncoder(request.format, rate)
                    pcm += data
                    out = encoder.add(data)
                    if out:
                        if outcome.first_audio is None:
                            outcome.first_audio = time.monotonic() - started
                        yield out
                left = deadline.remaining()
                if left is not None and left <= 0:  # a backend that trickles: the call's timeout holds after the first audio too
                    raise deadline.expired_error(model.provider)
                began = time.perf_counter()
                data, chunk_rate = next(chunks, (b"", -1))
                compute += time.perf_counter() - began
                if chunk_rate == -1:
                    break
        if encoder is None:
            raise InvalidRequestError(f"{model.id} made no audio for this text")
        tail = encoder.finish()
        if tail:
            yield tail
        finished = True
    except BaseException:  # the caller stopped listening, or the backend failed: the work it did is charged
        if chunks is not None:
            getattr(chunks, "close", lambda: None)()  # stops the backend's work
        if sent:
            _charge(pipeline, plan, reservation, sent, compute, cut=True)
        else:
            pipeline.ledger.release(reservation)
        raise
    cost, notice = _charge(pipeline, plan, reservation, sent, compute, cut=not finished)
    facts = make_provenance(model=model.id, prompt=request.text, request_id=request_id)
    whole = _whole(bytes(pcm), rate, request.format, facts)
    notices = Notices(plan.notices)
    if notice is not None:  # the actual cost's notice replaces the estimate's
        notices.add(notice)
    outcome.result = SpeechResult(whole, cost, model.id, notices.messages())


def _charge(pipeline: Pipeline, plan: Any, reservation: Any, characters: int, compute: float, *, cut: bool
            ) -> tuple[Cost, Any]:  # fmt: skip
    usage = [Usage.of("character", characters), Usage("compute_second", Decimal(str(round(compute, 3))))]
    cost, notice = plan._priced(usage)
    pipeline.ledger.commit(reservation, cost.credits, cost.usd)
    if cut:
        note = "the stream was closed before its end: charged for the text sent and the compute used"
        try:
            pipeline.ledger.record(reservation.account, "cancelled", note, reservation.request_id, plan.model.id)
        except Exception as exc:  # noqa: BLE001 - the charge stands; only its note is missing
            log.warning("could not record a stream closed early: %s", exc)
    return cost, notice


def _whole(pcm: bytes, rate: int, fmt: str, facts: dict[str, str]) -> Audio:
    from ._audio import encode

    audio = encode(pcm, rate, fmt)
    return Audio(audio.data, audio.media_type, audio.sample_rate, audio.duration, audio.channels, facts)


class _Transcription:
    """The thread side of a :class:`TranscriptStream` (kept apart from it, so that an abandoned stream is freed and
    its call cancelled)."""

    def __init__(self, pipeline: Pipeline, request: TranscribeRequest) -> None:
        self.pipeline, self.request = pipeline, request
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.switch = Switch()

    def run(self) -> None:
        ITEM_CANCEL.set(self.switch)  # closing the stream cancels the call
        SEGMENTS.set(lambda segment: self.queue.put(("segment", segment)))
        try:
            result = self.pipeline.run(self.request)
        except BaseException as error:  # noqa: BLE001 - handed to the reader, raised there
            self.queue.put(("error", error))
        else:
            self.queue.put(("done", result))


class TranscriptStream:
    """The segments of a transcription as they are recognised (:class:`~genai_sdk.Segment` values, in the audio's
    time); ``result`` is the :class:`~genai_sdk.Transcript` once it ends. The call runs in a thread through the one
    path; closing the stream early (or dropping it) cancels it, and the compute it used is recorded as spent. A
    backend that answers all at once (a hosted model) gives its segments when its answer arrives."""

    def __init__(self, pipeline: Pipeline, request: TranscribeRequest) -> None:
        self.result: Transcript | None = None
        self._work = _Transcription(pipeline, request)
        self._thread: threading.Thread | None = None
        self._given = 0
        self._over = False  # closed, failed or finished: nothing more comes
        self._reader = _OneReader()
        weakref.finalize(self, self._work.switch.flip)

    def __iter__(self) -> Iterator[Segment]:
        return self

    def __next__(self) -> Segment:
        with self._reader:
            return self._next()

    def _next(self) -> Segment:
        if self._over and (self.result is None or self._given >= len(self.result.segments)):
            raise StopIteration
        if self._thread is None:
            self._thread = threading.Thread(target=self._work.run, name="genai-transcribe-stream", daemon=True)
            self._thread.start()
        while True:
            if self.result is not None:  # the answer is in: what the recogniser did not hand over one by one
                if self._given < len(self.result.segments):
                    self._given += 1
                    return self.result.segments[self._given - 1]
                self._over = True
                raise StopIteration
            kind, value = self._work.queue.get()
            if kind == "segment":
                self._given += 1
                return cast(Segment, value)
            if kind == "error":
                self._over = True
                raise value
            self.result = cast(Transcript, value)

    def close(self) -> None:
        """Stop the transcription (its call is cancelled and settled) and wait for its thread."""
        self._over = True
        self._work.switch.flip()
        if self._thread is not None:
            self._thread.join()
        if self.result is not None:  # what was not read is dropped
            self._given = len(self.result.segments)

    def __enter__(self) -> TranscriptStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncTranscriptStream(_AsyncStream[Segment]):
    """:class:`TranscriptStream` for ``async for``."""

    def __init__(self, pipeline: Pipeline, request: TranscribeRequest) -> None:
        self._transcript = TranscriptStream(pipeline, request)
        super().__init__(self._transcript)

    @property
    def result(self) -> Transcript | None:
        return self._transcript.result

