"""The one path every call takes:

    resolve model -> validate -> policy.check(prompt) -> ledger.reserve(estimate)
      -> retry(provider call) for each backend call -> policy.check_output -> ledger.commit | ledger.release

A refusal at either check, or the provider's, is recorded in the ledger's history and never charged.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, overload

from ._batch import ITEM_CANCEL, REQUEST_TAG, STAGE
from ._catalog import Catalog, ModelInfo, split_model_id
from ._config import Settings
from ._errors import (
    ConfigError,
    ContentPolicyError,
    GenAIError,
    GenerationFailedError,
    InvalidRequestError,
    UnsupportedError,
)
from ._fallback import FAILED_OVER, SKIPPED, CircuitBreaker, exhausted, for_model, served
from ._jobs import CallPlan, ImagePlan, build_image_job
from ._limits import CLIENT_SIDE, RateLimiter
from ._longjobs import Job, JobStore, job_store, rebuilt, request_facts
from ._observe import CURRENT, Observer
from ._requests import (
    Cost,
    ImageRequest,
    ImageResult,
    LanguageGuess,
    PolicyDecision,
    Progress,
    Request,
    ScoreRequest,
    SpeechResult,
    SynthesizeRequest,
    TranscribeRequest,
    Transcript,
    VideoRequest,
    VideoResult,
)
from ._retry import Attempt, Deadline, RetryPolicy, acall_with_retry, call_with_retry
from .credits import Ledger, Reservation
from .credits._plans import Plan, UsdPlan
from .credits._pricing import Notices, Pricing
from .credits._rules import utcnow
from .policy import Policy
from .providers import ProviderPool
from .providers.base import CallContext, Cancelled, Provider, spent_work

if TYPE_CHECKING:  # the speech and video modules load on their first call
    from ._media import Image
    from ._score_jobs import ScorePlan, ScoreResult
    from ._speech_jobs import SynthesizePlan, TranscribePlan
    from ._video_jobs import VideoPlan
    from .providers.base import ImageBatch, VideoOutcome

    SomePlan = ImagePlan | TranscribePlan | SynthesizePlan | VideoPlan | ScorePlan
    SomeResult = ImageResult | Transcript | LanguageGuess | SpeechResult | VideoResult | ScoreResult

P = TypeVar("P")  # a plan's part (what one backend call is given)
O = TypeVar("O")  # what one backend call answers  # noqa: E741
R = TypeVar("R")  # the call's result

log = logging.getLogger("genai_sdk")
# A library's logger says nothing unless the application configures logging (Python's last-resort handler would
# print every warning to standard error).
log.addHandler(logging.NullHandler())
# Threads for the reservations and charges of async calls on a blocking ledger (SQLite, PostgreSQL); their futures
# finish the bookkeeping of a cancelled call even after its event loop is gone.
_LEDGER_THREADS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="genai-ledger")

_JOBS_LOCK = threading.Lock()
_PARALLEL_PARTS = 8  # backend calls of one synchronous request in flight at once

_MODALITY_SETTING = {
    "images": "image",
    "videos": "video",
    "speech_to_text": "speech_to_text",
    "text_to_speech": "text_to_speech",
    "image_scoring": "image_scoring",
}
_SETTING_EXAMPLE = {"image_scoring": "clip:openai/clip-vit-base-patch32"}


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        policy: Policy,
        ledger: Ledger,
        providers: ProviderPool,
        retry: RetryPolicy,
        plan: Plan | None = None,
        clock: Callable[[], datetime] = utcnow,
        observer: Observer | None = None,
        limiter: RateLimiter | None = None,
        jobs_url: str | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.policy = policy
        self.ledger = ledger
        self.providers = providers
        self.retry = retry
        self.plan: Plan = plan if plan is not None else UsdPlan()
        self.pricing = Pricing(settings.credits_per_usd, self.plan)  # every cost, estimated or actual, is made there
        self.clock = clock
        self.breaker = CircuitBreaker(settings.circuit_breaker_failures, settings.circuit_breaker_cooldown)
        self.observer = observer  # the on_call_end hook and OpenTelemetry spans, when asked for
        self.limiter = limiter  # client-side rate limits, when configured
        self._jobs_url = jobs_url  # where long jobs are recorded: the ledger's database (None: in memory)
        self._jobs: JobStore | None = None
        # Records of long jobs are written in order by a thread of the client's own, never on an event loop.
        self._writer: ThreadPoolExecutor | None = None

    # -- resolving and validating (no network, nothing reserved) -------------------------------------------

    def models_for(self, request: Request) -> tuple[str, ...]:
        """The models a request may be served by, in order: ``model=``, else the setting (one, or fallbacks)."""
        chosen = request.options.model or getattr(self.settings, _MODALITY_SETTING[request.modality])
        if isinstance(chosen, tuple):
            return chosen
        return (chosen or self.model_id_for(request.modality, None),)

    def model_id_for(self, modality: str, explicit: str | tuple[str, ...] | None) -> str:
        if explicit:
            return explicit if isinstance(explicit, str) else explicit[0]
        setting = _MODALITY_SETTING[modality]
        configured = getattr(self.settings, setting)
        if configured:
            return configured if isinstance(configured, str) else str(configured[0])
        if modality == "images":
            recommended = self.catalog.recommended("openai", "images.generate")
            if recommended is not None:
                return recommended.id
        raise ConfigError(
            f"no {setting} model is configured: pass model=..., set {setting} in genai.toml, "
            f"or set GENAI_{setting.upper()} (for example {_SETTING_EXAMPLE.get(setting, 'replicate:owner/name')!r})"
        )

    def resolve(self, modality: str, explicit: str | tuple[str, ...] | None) -> tuple[ModelInfo, Provider]:
        model_id = self.model_id_for(modality, explicit)
        provider_name, model_name = split_model_id(model_id)
        provider = self.providers.get(provider_name)  # a missing key or extra is reported before anything else
        model = self.catalog.get(f"{provider_name}:{model_name}") or provider.describe(model_name)
        if model is None:
            known = ", ".join(m.id for m in self.catalog.models(provider_name)) or "none"
            raise InvalidRequestError(
                f"unknown model {model_id!r}; models known for {provider_name}: {known} "
                "(a model served elsewhere can be added with client.catalog.register(...))"
            )
        return model, provider

    @overload
    def build(self, request: ImageRequest, *, estimate_only: bool = False) -> ImagePlan: ...
    @overload
    def build(self, request: TranscribeRequest, *, estimate_only: bool = False) -> TranscribePlan: ...
    @overload
    def build(self, request: SynthesizeRequest, *, estimate_only: bool = False) -> SynthesizePlan: ...
    @overload
    def build(self, request: VideoRequest, *, estimate_only: bool = False) -> VideoPlan: ...
    @overload
    def build(self, request: ScoreRequest, *, estimate_only: bool = False) -> ScorePlan: ...
    @overload
    def build(self, request: Request, *, estimate_only: bool = False) -> SomePlan: ...
    def build(self, request: Request, *, estimate_only: bool = False) -> SomePlan:
        """The request's plan: validated against the catalog and the provider, priced, nothing reserved."""
        self.providers.check_option_names(request.options.provider_options)  # a misspelt provider name is refused
        if estimate_only:
            # A catalog model is priced without its provider: no key, no backend import, no network.
            model_id = self.model_id_for(request.modality, request.options.model)
            provider_name, model_name = split_model_id(model_id)
            known = self.catalog.get(f"{provider_name}:{model_name}")
            model, provider = (known, None) if known else self.resolve(request.modality, request.options.model)
        else:
            model, provider = self.resolve(request.modality, request.options.model)
        args = (model, provider, self.catalog, self.pricing, self.clock().date())
        if isinstance(request, ImageRequest):
            return build_image_job(request, *args)
        if isinstance(request, TranscribeRequest):
            from ._speech_jobs import build_transcribe_job

            return build_transcribe_job(request, *args)
        if isinstance(request, SynthesizeRequest):
            from ._speech_jobs import build_synthesize_job

            return build_synthesize_job(request, *args)
        if isinstance(request, VideoRequest):
            from ._video_jobs import build_video_job

            return build_video_job(request, *args)
        if isinstance(request, ScoreRequest):
            from ._score_jobs import build_score_job

            return build_score_job(request, *args)
        raise ConfigError(f"{request.modality} calls are not part of this release of genai-sdk yet")

    def estimate(self, request: Request) -> Cost:
        return self.build(request, estimate_only=True).estimate

    # -- the content policy ---------------------------------------------------------------------------------

    def _record_refusal(self, error: ContentPolicyError, account: str, request_id: str, job: CallPlan[P, O, R]) -> None:
        """Every refusal leaves a line in the history, never a charge: model, stage, source, categories, and a digest
        of the prompt (not the prompt)."""
        digest = hashlib.sha256((job.policy_text or "").encode("utf-8", "surrogatepass")).hexdigest()[:16]
        categories = ", ".join(error.categories) or "unspecified"
        reason = f"content policy: {error.stage} refused by {error.source} ({categories}); prompt sha256:{digest}"
        try:
            self.ledger.record(account, "refusal", reason, request_id, job.model.id)
        except GenAIError as exc:  # the refusal stands; only its record is lost
            log.warning("could not record a content-policy refusal in the ledger: %s", exc)

    def _enforce(self, decision: PolicyDecision | None, account: str, request_id: str, job: CallPlan[P, O, R]) -> None:
        if decision is None or decision.allowed:
            return
        what = "output" if decision.stage == "output" else "prompt"
        error = ContentPolicyError(
            f"the {what} was refused by the content policy ({self.policy.name}): {decision.reason}",
            stage=decision.stage, source="local", categories=decision.categories, request_id=request_id,
        )  # fmt: skip
        self._record_refusal(error, account, request_id, job)
        raise error

    @staticmethod
    def _attach(result: object, decisions: list[PolicyDecision | None]) -> None:
        """The decisions go on the result; a flag or a moderator outage also becomes a warning."""
        if not (hasattr(result, "policy") and hasattr(result, "warnings")):  # a language guess: it carries no checks
            return
        for decision in decisions:
            if decision is None:
                continue
            result.policy.append(decision)
            result.warnings.extend(w for w in decision.warnings if w not in result.warnings)
            if decision.action == "flag":
                result.warnings.append(
                    f"content policy flagged the {decision.stage} ({', '.join(decision.categories)}): {decision.reason}"
                )

    # -- running ----------------------------------------------------------------------------------------------

    def _prepare(self, job: CallPlan[P, O, R], request: Request) -> tuple[str, str, Cost, PolicyDecision | None]:
        """Everything before the reservation: validation, the prompt check (a refusal reserves nothing), the
        estimate."""
        account = request.options.account or self.settings.account
        request_id = REQUEST_TAG.get() + os.urandom(16).hex()
        decision = self.policy.check(job.policy_text) if self.policy.enabled and job.policy_text else None
        self._enforce(decision, account, request_id, job)
        return request_id, account, job.estimate, decision

    async def _aprepare(self, job: CallPlan[P, O, R], request: Request) -> tuple[str, str, Cost, PolicyDecision | None]:
        account = request.options.account or self.settings.account
        request_id = REQUEST_TAG.get() + os.urandom(16).hex()
        decision = await self.policy.acheck(job.policy_text) if self.policy.enabled and job.policy_text else None
        if decision is not None and not decision.allowed:
            await self._ledger(self._enforce, decision, account, request_id, job)
        return request_id, account, job.estimate, decision

    def _run(
        self,
        request: Request,
        job: CallPlan[P, O, R],
        request_id: str,
        reservation: Reservation,
        account: str,
        decision: PolicyDecision | None,
        deadline: Deadline,
    ) -> _Run[P, O, R]:
        run = _Run(job, request_id, reservation, deadline, request.options.on_progress)
        run.account, run.decision = account, decision
        return run

    def _priced_result(self, run: _Run[P, O, R], outcomes: list[O]) -> tuple[R, Cost]:
        """Price what was produced and check it (the caller releases the reservation if this raises)."""
        cost, notice = run.job.cost(outcomes)
        notices = Notices(run.job.notices)
        if notice is not None:
            notices.add(notice)
        result = run.job.result(outcomes, cost, run.request_id, notices)
        output = self.policy.check_output(result, run.decision) if self.policy.enabled else None
        self._enforce(output, run.account, run.request_id, run.job)
        self._attach(result, [run.decision, output])
        warnings = getattr(result, "warnings", None)
        if warnings and log.isEnabledFor(logging.WARNING):  # once per call, every warning in one line
            log.warning("%s (request %s): %s", run.job.model.id, run.request_id, "; ".join(warnings))
        return result, cost

    async def _apriced_result(self, run: _Run[P, O, R], outcomes: list[O]) -> tuple[R, Cost]:
        import asyncio

        # The output checks decode pictures and run models: off the event loop.
        return await asyncio.to_thread(self._priced_result, run, outcomes)

    def _failed(self, error: BaseException, run: _Run[P, O, R]) -> None:
        """A refusal from any layer, local or the provider's, is recorded (the reservation is released anyway)."""
        if isinstance(error, ContentPolicyError) and error.source == "provider":
            self._record_refusal(error, run.account, run.request_id, run.job)

    # -- long jobs that outlive their process -------------------------------------------------------------------

    @property
    def jobs(self) -> JobStore:
        """The job records, once the records still being written are (reads see every call that has ended)."""
        self._flush()
        return self._store()

    def _write(self, function: Callable[..., None], *args: Any) -> Future[None]:
        if self._writer is None:
            with _JOBS_LOCK:
                if self._writer is None:
                    self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genai-jobs")
        return self._writer.submit(function, *args)

    def _flush(self, timeout: float | None = None) -> None:
        if self._writer is not None:
            self._writer.submit(lambda: None).result(timeout)

    def close_side_tables(self) -> None:
        """Close the connections of the tables kept beside the ledger (jobs, rate-limit slots), once the records
        still being written are."""
        if self._writer is not None:
            self._writer.shutdown(wait=True)  # what was queued is written first
            self._writer = None
        if self._jobs is not None:
            self._jobs.close()
        if self.limiter is not None:
            self.limiter.slots.close()

    def _job_recorder(self, run: _Run[P, O, R], request: Request, wait: bool) -> Callable[[str, Any], None]:
        """What a backend call tells when a long job starts: the job is recorded before it is waited on (a blocking
        caller waits for the record; on the event loop it is written by the jobs' own thread, in order)."""

        def record(backend_id: str, handle: Any) -> None:
            now = time.time()
            family = "videos" if request.modality == "videos" else "images"
            reservation = run.reservation
            job = Job(backend_id, run.job.model.id, f"{family}.{request.operation}", "running", run.account,
                      run.request_id, reservation.credits, reservation.usd, now, now, "", dict(handle),
                      request_facts(request), reservation.id)  # fmt: skip
            run.backend_jobs.append(backend_id)
            try:
                written = self._write(self._store_add, job)
                if wait:
                    written.result(run.deadline.remaining())
            except Exception as exc:  # noqa: BLE001 - the call goes on (its deadline too); only its record is missing
                log.warning("could not record %s job %s: %s", job.model, backend_id, exc)

        return record

    def _store_add(self, job: Job) -> None:
        self._store().add(job)

    def _store(self) -> JobStore:
        """The store, from the jobs' own thread (``jobs`` waits for that thread)."""
        if self._jobs is None:
            with _JOBS_LOCK:
                if self._jobs is None:
                    self._jobs = job_store(self._jobs_url)
        return self._jobs

    def _end_jobs(self, run: _Run[P, O, R], status: str, note: str = "") -> None:
        for backend_id in run.backend_jobs:
            try:
                self._write(self._end_job, backend_id, status, note)
            except RuntimeError:  # the interpreter is shutting down: the record stays running, for a resume
                log.warning("could not record the end of job %s: the process is ending", backend_id)

    def _end_job(self, backend_id: str, status: str, note: str) -> None:
        try:
            self._store().update(backend_id, status, note, only_if="running")
        except Exception as exc:  # noqa: BLE001 - a record left running is shown by client.jobs.list()
            log.warning("could not record the end of job %s: %s", backend_id, exc)

    def _recorded(self, job_id: object) -> Job:
        if not isinstance(job_id, str) or not job_id:
            raise InvalidRequestError(f"job id {job_id!r}: give the id client.jobs.list() shows")
        job = self.jobs.get(job_id)
        if job is None:
            raise InvalidRequestError(f"no job {job_id!r} is recorded with this ledger: client.jobs.list() shows them")
        if job.status != "running":
            done = " (its output was collected and charged)" if job.status == "done" else ""
            raise InvalidRequestError(f"job {job_id} is {job.status}{done}: only a running job can be resumed or cancelled")
        return job

    def _job_backend(self, job: Job, method: str) -> tuple[ModelInfo, Callable[..., object]]:
        modality = "videos" if job.operation.startswith("videos.") else "images"
        model, provider = self.resolve(modality, job.model)
        action = getattr(provider, method, None)
        if action is None and method == "cancel_job":
            raise UnsupportedError(
                f"{model.provider} cannot cancel job {job.id}: it runs on and is billed; collect it with "
                f"client.jobs.resume({job.id!r})"
            )
        if action is None:
            raise UnsupportedError(f"{model.provider} jobs cannot be resumed")
        return model, action

    def _reservation(self, job: Job) -> Reservation:
        return Reservation(job.reservation, job.account, job.credits, job.usd, job.request_id, job.model, self.clock())

    def resume_job(self, job_id: str) -> ImageResult | VideoResult:
        """Follow the call a recorded job belongs to (each of its jobs still running) to its end, collect the
        output, check it, and charge the call exactly once under its own request id, settling its reservation: if
        the call was charged after all, that charge stands and nothing is added."""
        first = self._recorded(job_id)
        jobs = [j for j in self.jobs.list("running", first.account) if j.request_id == first.request_id] or [first]
        model, resume = self._job_backend(first, "resume")
        kind = "videos" if first.operation.startswith("videos.") else "images"
        deadline = Deadline(self.settings.timeout)
        outcomes: list[ImageBatch | VideoOutcome] = []
        for job in jobs:

            def attempt(a: Attempt, job: Job = job) -> ImageBatch | VideoOutcome:
                made = resume(model, kind, job.handle, CallContext(f"resume-{job.id}", a.timeout, a.number))
                return cast("ImageBatch | VideoOutcome", made)

            try:
                outcomes.append(call_with_retry(attempt, self.retry, deadline, provider=model.provider))
            except (GenerationFailedError, ContentPolicyError) as ended:  # it ended without output: not billed
                self.jobs.update(job.id, "failed", str(ended), only_if="running")
                if len(jobs) == 1:
                    self.ledger.release(self._reservation(first))
                    raise
        if not outcomes:
            self.ledger.release(self._reservation(first))
            raise GenerationFailedError(f"every job of the call {first.request_id} ended without output",
                                        provider=model.provider)  # fmt: skip
        if kind == "videos":
            video_request = rebuilt(first, 1)
            assert isinstance(video_request, VideoRequest)
            videos = cast("list[VideoOutcome]", outcomes[:1])
            result: ImageResult | VideoResult = self._collected(self.build(video_request), first, videos)
        else:
            batches = cast("list[ImageBatch]", outcomes)
            image_request = rebuilt(first, sum(len(batch.images) for batch in batches))
            assert isinstance(image_request, ImageRequest)
            result = self._collected(self.build(image_request), first, batches)
        for job in jobs:
            self.jobs.update(job.id, "done", "collected by client.jobs.resume", only_if="running")
        return result

    def _collected(self, plan: CallPlan[P, O, R], job: Job, outcomes: list[O]) -> R:
        """A resumed call's output, priced and checked as the call would have, and charged once."""
        cost, notice = plan.cost(outcomes)
        notices = Notices(plan.notices)
        if notice is not None:
            notices.add(notice)
        result = plan.result(outcomes, cost, job.request_id, notices)
        decision = self.policy.check(plan.policy_text) if self.policy.enabled and plan.policy_text else None
        output = self.policy.check_output(result, decision) if self.policy.enabled else None
        try:
            self._enforce(output, job.account, job.request_id, plan)
        except ContentPolicyError as refused:
            self.ledger.release(self._reservation(job))
            for sibling in self.jobs.list("running", job.account):
                if sibling.request_id == job.request_id:
                    self.jobs.update(sibling.id, "failed", f"the output was refused: {refused}", only_if="running")
            raise
        self._attach(result, [decision, output])
        _stage(result, cost, self._reservation(job))
        self.ledger.commit(self._reservation(job), cost.credits, cost.usd)  # once per request id, whoever is first
        return result

    def cancel_job(self, job_id: str) -> Job:
        """Stop a recorded job on its backend and give its call's reservation back."""
        job = self._recorded(job_id)
        model, cancel = self._job_backend(job, "cancel_job")
        status = cancel(model, job.handle)
        if status == "succeeded":
            raise InvalidRequestError(
                f"job {job_id} finished before it could be cancelled, and is billed: collect it with "
                f"client.jobs.resume({job_id!r})"
            )
        self.ledger.release(self._reservation(job))
        self.jobs.update(job.id, "cancelled", "cancelled by client.jobs.cancel", only_if="running")
        return self.jobs.get(job.id) or job

    def _warm(self, job: CallPlan[P, O, R], *, asynchronous: bool) -> None:
        """Under a rate limit, a backend's client is made before a slot is taken, not on the clock of the slot: a
        first call's set-up time would otherwise bunch requests at the backend."""
        prepare = getattr(job.provider, "prepare", None)
        if self.limiter is not None and prepare is not None and self.limiter.rules(job.model.id):
            prepare(asynchronous=asynchronous)

    def _deadline(self, request: Request) -> Deadline:
        """The call's timeout runs from the moment it is made: checks, imports and waits for the ledger count."""
        return Deadline(request.options.timeout if request.options.timeout is not None else self.settings.timeout)

    @overload
    def run(self, request: ImageRequest) -> ImageResult: ...
    @overload
    def run(self, request: TranscribeRequest) -> Transcript | LanguageGuess: ...
    @overload
    def run(self, request: SynthesizeRequest) -> SpeechResult: ...
    @overload
    def run(self, request: VideoRequest) -> VideoResult: ...
    @overload
    def run(self, request: ScoreRequest) -> ScoreResult: ...
    def run(self, request: Request) -> SomeResult:
        """Run a request to its typed result: the one path of every call, hop by hop when it has fallbacks."""
        if self.observer is None:
            return self._hops(request)
        with self.observer.watch(request, self._first_model(request)) as deliver:
            result = self._hops(request)
            deliver(result)
            return result

    def _first_model(self, request: Request) -> str:
        try:
            return self.models_for(request)[0]
        except GenAIError:  # no model configured: the call says so in a moment
            return ""

    def _hops(self, request: Request) -> SomeResult:
        deadline = self._deadline(request)  # counted from the moment the call is made, for every hop together
        hops = self._fallbacks(request)
        plan, hop = next(hops)
        while True:
            try:
                answer: SomeResult | GenAIError = self._dispatch(plan, hop, deadline)
            except FAILED_OVER as error:
                answer = error
            try:
                plan, hop = hops.send(answer)
            except StopIteration as done:
                return cast("SomeResult", done.value)

    def _fallbacks(self, request: Request) -> Generator[tuple[SomePlan, Request], SomeResult | GenAIError, SomeResult]:
        """The hops of a call, for the sync and async drivers alike: yields each hop's plan and request, and is sent
        what the hop's call answered (its result, or the error that moves the call on to the next model)."""
        models = self.models_for(request)
        failures: list[tuple[str, GenAIError]] = []
        for model_id in models:
            hop = request if len(models) == 1 else for_model(request, model_id)
            try:
                self.breaker.check(model_id, model_id.partition(":")[0])
                plan = self.build(hop)
            except SKIPPED as error:  # this hop cannot take the request: nothing was reserved or sent
                if len(models) == 1:
                    raise
                failures.append((model_id, error))
                continue
            answer = yield plan, hop
            if isinstance(answer, GenAIError):  # unavailable or rate-limited, after the hop's retries
                if not getattr(answer, CLIENT_SIDE, False):  # the client's own limit says nothing of the backend
                    self.breaker.failed(model_id)
                if len(models) == 1:
                    raise answer
                failures.append((model_id, answer))
                continue
            self.breaker.succeeded(model_id)
            served(answer, failures)
            return answer
        raise exhausted(failures)

    def _dispatch(self, plan: SomePlan, request: Request, deadline: Deadline) -> SomeResult:
        """One branch per modality, so that each result keeps its type."""
        if isinstance(request, ImageRequest):
            return self._execute(cast(ImagePlan, plan), request, deadline)
        if isinstance(request, TranscribeRequest):
            return self._execute(cast("TranscribePlan", plan), request, deadline)
        if isinstance(request, SynthesizeRequest):
            return self._execute(cast("SynthesizePlan", plan), request, deadline)
        if isinstance(request, ScoreRequest):
            return self._execute(cast("ScorePlan", plan), request, deadline)
        return self._execute(cast("VideoPlan", plan), request, deadline)

    def _execute(self, job: CallPlan[P, O, R], request: Request, deadline: Deadline) -> R:
        request_id, account, estimate, decision = self._prepare(job, request)
        self.plan.prepare(self.ledger, account, self.clock())
        reservation = self.ledger.reserve(account, estimate.credits, estimate.usd, request_id, job.model.id)
        run = self._run(request, job, request_id, reservation, account, decision, deadline)
        attempts = CURRENT.get()
        self._warm(job, asynchronous=False)
        recorder = self._job_recorder(run, request, wait=True)

        def one(index: int, part: P) -> O:
            def attempt(a: Attempt) -> O:
                limiter = self.limiter
                slots = limiter.acquire(job.model.id, run.deadline.remaining) if limiter else None
                if attempts is not None:
                    attempts.add(job.model.id)
                try:
                    return job.call(part, CallContext(f"{request_id}-{index}", a.timeout, a.number, run.on_step, run.cancelled,
                                                      recorder, run.on_preview))  # fmt: skip
                except BaseException as error:  # Ctrl-C too: work the backend could not stop is spent
                    run.note_spent(error)
                    raise
                finally:
                    if limiter is not None and slots:
                        limiter.release(slots)

            outcome = call_with_retry(attempt, self.retry, run.deadline, provider=job.model.provider, on_retry=run.on_retry)
            run.part_done()
            return outcome

        try:
            run.report("started", job.model.id)
            outcomes = [one(0, job.parts[0])] if len(job.parts) == 1 else _in_threads(one, job.parts, run)
            result, cost = self._priced_result(run, outcomes)
            _stage(result, cost, reservation)
        except BaseException as error:
            run.cancelled.set()
            self._settle_failed(run)
            self._failed(error, run)
            self._end_jobs(run, _ended(error), str(error))
            raise
        self._record_spent(run, outcomes)
        self.ledger.commit(reservation, cost.credits, cost.usd)
        self._end_jobs(run, "done")
        self._report_done(run)
        return result

    # Work a backend did and billed that the caller did not get (an answer that could not be used, a result file
    # that could not be downloaded) is recorded as "spent": it counts against budgets and the balance like a charge.

    def _spent_cost(self, run: _Run[P, O, R], outcomes: list[O]) -> tuple[Cost, str] | None:
        if not run.spent:
            return None
        delivered = {key for outcome in outcomes for key in str(getattr(outcome, "request_id", "") or "").split(",")}
        lost = [(outcome, note) for key, (outcome, note) in run.spent.items() if key not in delivered]
        if not lost:
            return None
        cost, _ = run.job.cost([outcome for outcome, _ in lost])
        return cost, "billed by the backend, not delivered: " + "; ".join(dict.fromkeys(note for _, note in lost))

    def _record_spent(self, run: _Run[P, O, R], outcomes: list[O]) -> None:
        spent = self._spent_cost(run, outcomes)
        if spent is not None:
            cost, note = spent
            self.ledger.commit(run.reservation, cost.credits, cost.usd, kind="spent", reason=note)

    def _settle_failed(self, run: _Run[P, O, R]) -> None:
        """A failed call's reservation: given back, or taken for the work the backend billed."""
        try:
            self._record_spent(run, [])
        except Exception as exc:  # the ledger, or an outcome a provider marked that cannot be priced: logged
            log.warning("could not record the spending of a failed call in the ledger: %s", exc)
        finally:
            self.ledger.release(run.reservation)

    async def _ledger(self, operation: Callable[..., Any], *args: Any) -> Any:
        """A ledger operation from async code: in a worker thread when it may block (SQLite, PostgreSQL)."""
        if not getattr(self.ledger, "blocking", True):
            return operation(*args)
        import asyncio

        return await asyncio.to_thread(operation, *args)

    @overload
    async def arun(self, request: ImageRequest) -> ImageResult: ...
    @overload
    async def arun(self, request: TranscribeRequest) -> Transcript | LanguageGuess: ...
    @overload
    async def arun(self, request: SynthesizeRequest) -> SpeechResult: ...
    @overload
    async def arun(self, request: VideoRequest) -> VideoResult: ...
    @overload
    async def arun(self, request: ScoreRequest) -> ScoreResult: ...
    async def arun(self, request: Request) -> SomeResult:
        if self.observer is None:
            return await self._ahops(request)
        with self.observer.watch(request, self._first_model(request)) as deliver:
            result = await self._ahops(request)
            deliver(result)
            return result

    async def _ahops(self, request: Request) -> SomeResult:
        deadline = self._deadline(request)
        hops = self._fallbacks(request)
        plan, hop = next(hops)
        while True:
            try:
                answer: SomeResult | GenAIError = await self._adispatch(plan, hop, deadline)
            except FAILED_OVER as error:
                answer = error
            try:
                plan, hop = hops.send(answer)
            except StopIteration as done:
                return cast("SomeResult", done.value)

    async def _adispatch(self, plan: SomePlan, request: Request, deadline: Deadline) -> SomeResult:
        if isinstance(request, ImageRequest):
            return await self._aexecute(cast(ImagePlan, plan), request, deadline)
        if isinstance(request, TranscribeRequest):
            return await self._aexecute(cast("TranscribePlan", plan), request, deadline)
        if isinstance(request, SynthesizeRequest):
            return await self._aexecute(cast("SynthesizePlan", plan), request, deadline)
        if isinstance(request, ScoreRequest):
            return await self._aexecute(cast("ScorePlan", plan), request, deadline)
        return await self._aexecute(cast("VideoPlan", plan), request, deadline)

    async def _aexecute(self, job: CallPlan[P, O, R], request: Request, deadline: Deadline) -> R:
        import asyncio

        request_id, account, estimate, decision = await self._aprepare(job, request)
        await self._ledger(self.plan.prepare, self.ledger, account, self.clock())
        reservation = await self._areserve(account, estimate, request_id, job.model.id)
        run = self._run(request, job, request_id, reservation, account, decision, deadline)
        attempts = CURRENT.get()
        self._warm(job, asynchronous=True)
        recorder = self._job_recorder(run, request, wait=False)

        async def one(index: int, part: P) -> O:
            async def attempt(a: Attempt) -> O:
                limiter = self.limiter
                slots = await limiter.aacquire(job.model.id, run.deadline.remaining) if limiter else None
                if attempts is not None:
                    attempts.add(job.model.id)
                try:
                    return await run.acall(part, CallContext(f"{request_id}-{index}", a.timeout, a.number, run.on_step,
                                                             run.cancelled, recorder, run.on_preview))  # fmt: skip
                finally:
                    if limiter is not None and slots:
                        await limiter.arelease(slots)

            outcome = await acall_with_retry(
                attempt, self.retry, run.deadline, provider=job.model.provider, on_retry=run.on_retry
            )
            run.part_done()
            return outcome

        tasks: list[asyncio.Task[O]] = []
        try:
            run.report("started", job.model.id)
            if len(job.parts) == 1:  # the common case, without a task group's machinery
                outcomes = [await one(0, job.parts[0])]
            else:
                async with asyncio.TaskGroup() as group:
                    tasks.extend(group.create_task(one(i, part)) for i, part in enumerate(job.parts))
                outcomes = [task.result() for task in tasks]
            if self.policy.enabled:
                result, cost = await self._apriced_result(run, outcomes)
            else:
                result, cost = self._priced_result(run, outcomes)
            if STAGE.get() is not None:
                await asyncio.to_thread(_stage, result, cost, reservation)
        except BaseExceptionGroup as group_error:
            run.cancelled.set()
            run.lost([t.result() for t in tasks if t.done() and not t.cancelled() and t.exception() is None])
            self._end_jobs(run, _ended(group_error.exceptions[0]), str(group_error.exceptions[0]))
            await self._ledger(self._settle_failed, run)
            if isinstance(group_error.exceptions[0], ContentPolicyError):
                await self._ledger(self._failed, group_error.exceptions[0], run)
            raise group_error.exceptions[0] from None
        except BaseException as error:  # a cancelled task too: local work in a thread stops at its next step
            run.cancelled.set()
            self._end_jobs(run, _ended(error), str(error))
            await self._ledger(self._settle_failed, run)
            if isinstance(error, ContentPolicyError):
                await self._ledger(self._failed, error, run)
            raise
        if run.spent:
            await self._ledger(self._record_spent, run, outcomes)
        await self._acommit(run, cost)
        self._end_jobs(run, "done")
        try:
            run.report("done")
        except BaseException:  # on_progress raised after the charge: the history says the result was not delivered
            await self._ledger(self._record_cancelled, run)
            raise
        return result

    # A ledger operation in a worker thread runs to its end even when the task awaiting it is cancelled, or when the
    # event loop closes. These two finish the bookkeeping of such an operation from the thread itself (a callback of
    # its concurrent future, which needs no event loop), so that a cancellation at any moment leaves nothing
    # reserved and no charge unexplained.

    async def _areserve(self, account: str, estimate: Cost, request_id: str, model_id: str) -> Reservation:
        if not getattr(self.ledger, "blocking", True):
            return self.ledger.reserve(account, estimate.credits, estimate.usd, request_id, model_id)
        import asyncio

        done = _LEDGER_THREADS.submit(self.ledger.reserve, account, estimate.credits, estimate.usd, request_id, model_id)
        try:
            return await asyncio.shield(asyncio.wrap_future(done))
        except asyncio.CancelledError:
            done.add_done_callback(self._release_when_made)  # cancelled while reserving: give it back once made
            raise

    def _release_when_made(self, done: Future[Any]) -> None:
        if done.exception() is None:
            try:
                self.ledger.release(done.result())
            except GenAIError as exc:  # it expires after reservation_ttl
                log.warning("could not release the reservation of a cancelled call: %s", exc)

    async def _acommit(self, run: _Run[P, O, R], cost: Cost) -> None:
        if not getattr(self.ledger, "blocking", True):
            self.ledger.commit(run.reservation, cost.credits, cost.usd)
            return
        import asyncio

        done = _LEDGER_THREADS.submit(self.ledger.commit, run.reservation, cost.credits, cost.usd)
        try:
            await asyncio.shield(asyncio.wrap_future(done))
        except asyncio.CancelledError:
            # The backend did the work and the charge stands; the caller, who gave up, gets nothing: say so.
            done.add_done_callback(lambda _: self._record_cancelled(run))
            raise

    def _report_done(self, run: _Run[P, O, R]) -> None:
        """The last progress report. The call is charged by now: if ``on_progress`` raises here, the caller does not
        get the result it paid for, and the history says so (a ``cancelled`` line next to the charge)."""
        try:
            run.report("done")
        except BaseException:
            self._record_cancelled(run)
            raise

    def _record_cancelled(self, run: _Run[P, O, R]) -> None:
        note = "cancelled after the backend finished: charged for the work done, the result was not delivered"
        try:
            self.ledger.record(run.account, "cancelled", note, run.request_id, run.job.model.id)
        except GenAIError as exc:
            log.warning("could not record a cancelled call in the ledger: %s", exc)


def _stage(result: object, cost: Cost, reservation: Reservation) -> None:
    """A dataset item's outputs, saved before its charge (see ``STAGE``); a no-op for every other call."""
    stage = STAGE.get()
    if stage is not None:
        stage(result, cost, reservation)


def _ended(error: BaseException) -> str:
    """What a long job's record says when its call ends with ``error``."""
    import asyncio

    return "cancelled" if isinstance(error, KeyboardInterrupt | asyncio.CancelledError | Cancelled) else "failed"


def _in_threads(one: Callable[[int, P], O], parts: Sequence[P], run: _Run[P, O, R]) -> list[O]:
    """The backend calls of one request at once (``n`` images from a model that makes one a call), as the async
    path runs them: the first failure cancels the rest, and its error is the call's. Parts that were made all the
    same are recorded as spent (the backend billed them; the caller gets none of them)."""
    from concurrent.futures import FIRST_EXCEPTION, wait

    pool = ThreadPoolExecutor(max_workers=min(len(parts), _PARALLEL_PARTS), thread_name_prefix="genai-part")
    futures = [pool.submit(one, index, part) for index, part in enumerate(parts)]
    try:
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f in done and f.exception() is not None), None)
        if failed is not None:
            raise cast(BaseException, failed.exception())
        return [future.result() for future in futures]
    except BaseException:  # a part failed, or Ctrl-C: the others stop at their next check, none starts
        run.cancelled.set()
        pool.shutdown(wait=True, cancel_futures=True)
        run.lost([f.result() for f in futures if f.done() and not f.cancelled() and f.exception() is None])
        raise
    finally:
        pool.shutdown(wait=False)


class _Run(Generic[P, O, R]):
    """One call in flight: its plan, ids, reservation, deadline and progress reporting."""

    __slots__ = (
        "job", "request_id", "reservation", "deadline", "callback", "done", "on_retry", "on_step", "on_preview", "cancelled",
        "account",
        "decision", "spent", "lock", "backend_jobs",
    )  # fmt: skip

    def __init__(
        self,
        job: CallPlan[P, O, R],
        request_id: str,
        reservation: Reservation,
        deadline: Deadline,
        callback: Callable[[Progress], None] | None,
    ) -> None:
        self.job = job
        self.request_id = request_id
        self.reservation = reservation
        self.deadline = deadline
        self.callback = callback
        self.done = 0
        self.on_retry = self._on_retry if callback is not None else None
        self.on_step = self._on_step if callback is not None else None
        self.on_preview = self._on_preview if callback is not None else None
        self.cancelled = threading.Event()  # set when the call fails or is given up: its parts stop
        switch = ITEM_CANCEL.get()
        if switch is not None:  # an item of a batch: cancelling the batch cancels this call too
            switch.register(self.cancelled)
        self.lock = threading.Lock()
        self.backend_jobs: list[str] = []  # long jobs the call started, as recorded
        self.account = ""
        self.decision: PolicyDecision | None = None
        self.spent: dict[str, tuple[O, str]] = {}  # key of billed work -> (what was made, why it was lost)

    def note_spent(self, error: BaseException) -> None:
        found = spent_work(error)
        if found is not None:
            key, outcome = found
            reason = error.message if isinstance(error, GenAIError) else "the call was cancelled; the backend's work was billed all the same"
            self.spent[key] = (cast(O, outcome), reason)  # the provider marks the outcome type of its operation

    def lost(self, outcomes: Sequence[O]) -> None:
        """Parts made by the backend for a call that failed all the same: billed, never delivered."""
        for index, outcome in enumerate(outcomes):
            key = str(getattr(outcome, "request_id", "") or f"{self.request_id}-made-{index}")
            self.spent[key] = (outcome, "made by the backend while another part of the call failed; not delivered")

    async def acall(self, part: P, ctx: CallContext) -> O:
        try:
            return await self.job.acall(part, ctx)
        except BaseException as error:  # a cancelled task too: work the backend could not stop is spent
            self.note_spent(error)
            raise

    def report(self, stage: str, message: str = "") -> None:
        if self.callback is not None:  # no Progress object is built when nobody listens
            total = len(self.job.parts)
            self.callback(Progress(stage, total if stage == "done" else self.done, total, message))

    def part_done(self) -> None:
        with self.lock:  # parts may finish in several threads at once
            self.done += 1
        self.report("generating")

    def _on_step(self, done: float, total: float, message: str) -> None:
        """Progress inside one long backend call (seconds of audio transcribed, sentences spoken, steps run)."""
        if self.callback is not None:
            self.callback(Progress(message, done, total))

    def _on_preview(self, index: int, image: Image) -> None:
        """A picture of the work in progress (gpt-image's ``partial_images``)."""
        if self.callback is not None:
            self.callback(Progress("partial", index + 1, None, "a partial image", preview=image))

    def _on_retry(self, attempt: int, delay: float, error: BaseException) -> None:
        self.report("retrying", f"attempt {attempt} failed ({error}); retrying in {delay:.2f} s")
