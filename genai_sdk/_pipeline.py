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
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, overload

from ._catalog import Catalog, ModelInfo, split_model_id
from ._config import Settings
from ._errors import ConfigError, ContentPolicyError, GenAIError, InvalidRequestError
from ._jobs import CallPlan, ImagePlan, build_image_job
from ._requests import (
    Cost,
    ImageRequest,
    ImageResult,
    LanguageGuess,
    PolicyDecision,
    Progress,
    Request,
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
from .providers.base import CallContext, Provider, spent_work

if TYPE_CHECKING:  # the speech and video modules load on their first call
    from ._speech_jobs import SynthesizePlan, TranscribePlan
    from ._video_jobs import VideoPlan

    SomePlan = ImagePlan | TranscribePlan | SynthesizePlan | VideoPlan

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

_MODALITY_SETTING = {
    "images": "image",
    "videos": "video",
    "speech_to_text": "speech_to_text",
    "text_to_speech": "text_to_speech",
}


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

    # -- resolving and validating (no network, nothing reserved) -------------------------------------------

    def model_id_for(self, modality: str, explicit: str | None) -> str:
        if explicit:
            return explicit
        setting = _MODALITY_SETTING[modality]
        configured = getattr(self.settings, setting)
        if configured:
            return str(configured)
        if modality == "images":
            recommended = self.catalog.recommended("openai", "images.generate")
            if recommended is not None:
                return recommended.id
        raise ConfigError(
            f"no {setting} model is configured: pass model=..., set {setting} in genai.toml, "
            f"or set GENAI_{setting.upper()} (for example 'replicate:owner/name')"
        )

    def resolve(self, modality: str, explicit: str | None) -> tuple[ModelInfo, Provider]:
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
        request_id = os.urandom(16).hex()
        decision = self.policy.check(job.policy_text) if self.policy.enabled and job.policy_text else None
        self._enforce(decision, account, request_id, job)
        return request_id, account, job.estimate, decision

    async def _aprepare(self, job: CallPlan[P, O, R], request: Request) -> tuple[str, str, Cost, PolicyDecision | None]:
        account = request.options.account or self.settings.account
        request_id = os.urandom(16).hex()
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
    def run(self, request: Request) -> ImageResult | Transcript | LanguageGuess | SpeechResult | VideoResult:
        """Run a request to its typed result: the one path of every call."""
        deadline = self._deadline(request)  # counted from the moment the call is made
        if isinstance(request, ImageRequest):  # one branch per modality, so that each result keeps its type
            return self._execute(self.build(request), request, deadline)
        if isinstance(request, TranscribeRequest):
            return self._execute(self.build(request), request, deadline)
        if isinstance(request, SynthesizeRequest):
            return self._execute(self.build(request), request, deadline)
        return self._execute(self.build(request), request, deadline)

    def _execute(self, job: CallPlan[P, O, R], request: Request, deadline: Deadline) -> R:
        request_id, account, estimate, decision = self._prepare(job, request)
        self.plan.prepare(self.ledger, account, self.clock())
        reservation = self.ledger.reserve(account, estimate.credits, estimate.usd, request_id, job.model.id)
        run = self._run(request, job, request_id, reservation, account, decision, deadline)
        try:
            run.report("started", job.model.id)
            outcomes: list[O] = []
            for index, part in enumerate(job.parts):

                def attempt(a: Attempt, part: P = part, index: int = index) -> O:
                    try:
                        return job.call(part, CallContext(f"{request_id}-{index}", a.timeout, a.number, run.on_step, run.cancelled))
                    except BaseException as error:  # Ctrl-C too: work the backend could not stop is spent
                        run.note_spent(error)
                        raise

                outcomes.append(
                    call_with_retry(attempt, self.retry, run.deadline, provider=job.model.provider, on_retry=run.on_retry)
                )
                run.part_done()
            result, cost = self._priced_result(run, outcomes)
        except BaseException as error:
            run.cancelled.set()
            self._settle_failed(run)
            self._failed(error, run)
            raise
        self._record_spent(run, outcomes)
        self.ledger.commit(reservation, cost.credits, cost.usd)
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
    async def arun(self, request: Request) -> ImageResult | Transcript | LanguageGuess | SpeechResult | VideoResult:
        deadline = self._deadline(request)
        if isinstance(request, ImageRequest):
            return await self._aexecute(self.build(request), request, deadline)
        if isinstance(request, TranscribeRequest):
            return await self._aexecute(self.build(request), request, deadline)
        if isinstance(request, SynthesizeRequest):
            return await self._aexecute(self.build(request), request, deadline)
        return await self._aexecute(self.build(request), request, deadline)

    async def _aexecute(self, job: CallPlan[P, O, R], request: Request, deadline: Deadline) -> R:
        request_id, account, estimate, decision = await self._aprepare(job, request)
        await self._ledger(self.plan.prepare, self.ledger, account, self.clock())
        reservation = await self._areserve(account, estimate, request_id, job.model.id)
        run = self._run(request, job, request_id, reservation, account, decision, deadline)

        async def one(index: int, part: P) -> O:
            async def attempt(a: Attempt) -> O:
                return await run.acall(part, CallContext(f"{request_id}-{index}", a.timeout, a.number, run.on_step, run.cancelled))

            outcome = await acall_with_retry(
                attempt, self.retry, run.deadline, provider=job.model.provider, on_retry=run.on_retry
            )
            run.part_done()
            return outcome

        try:
            run.report("started", job.model.id)
            if len(job.parts) == 1:  # the common case, without a task group's machinery
                outcomes = [
                    await acall_with_retry(
                        lambda a: run.acall(job.parts[0], CallContext(f"{request_id}-0", a.timeout, a.number, run.on_step, run.cancelled)),
                        self.retry,
                        run.deadline,
                        provider=job.model.provider,
                        on_retry=run.on_retry,
                    )
                ]
                run.part_done()
            else:
                import asyncio

                async with asyncio.TaskGroup() as group:
                    tasks = [group.create_task(one(i, part)) for i, part in enumerate(job.parts)]
                outcomes = [task.result() for task in tasks]
            if self.policy.enabled:
                result, cost = await self._apriced_result(run, outcomes)
            else:
                result, cost = self._priced_result(run, outcomes)
        except BaseExceptionGroup as group_error:
            run.cancelled.set()
            await self._ledger(self._settle_failed, run)
            if isinstance(group_error.exceptions[0], ContentPolicyError):
                await self._ledger(self._failed, group_error.exceptions[0], run)
            raise group_error.exceptions[0] from None
        except BaseException as error:  # a cancelled task too: local work in a thread stops at its next step
            run.cancelled.set()
            await self._ledger(self._settle_failed, run)
            if isinstance(error, ContentPolicyError):
                await self._ledger(self._failed, error, run)
            raise
        if run.spent:
            await self._ledger(self._record_spent, run, outcomes)
        await self._acommit(run, cost)
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


class _Run(Generic[P, O, R]):
    """One call in flight: its plan, ids, reservation, deadline and progress reporting."""

    __slots__ = (
        "job", "request_id", "reservation", "deadline", "callback", "done", "on_retry", "on_step", "cancelled", "account",
        "decision", "spent",
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
        self.cancelled = threading.Event()
        self.account = ""
        self.decision: PolicyDecision | None = None
        self.spent: dict[str, tuple[O, str]] = {}  # key of billed work -> (what was made, why it was lost)

    def note_spent(self, error: BaseException) -> None:
        found = spent_work(error)
        if found is not None:
            key, outcome = found
            reason = error.message if isinstance(error, GenAIError) else "the call was cancelled; the backend's work was billed all the same"
            self.spent[key] = (cast(O, outcome), reason)  # the provider marks the outcome type of its operation

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
        self.done += 1
        self.report("generating")

    def _on_step(self, done: float, total: float, message: str) -> None:
        """Progress inside one long backend call (seconds of audio transcribed, sentences spoken, steps run)."""
        if self.callback is not None:
            self.callback(Progress(message, done, total))

    def _on_retry(self, attempt: int, delay: float, error: BaseException) -> None:
        self.report("retrying", f"attempt {attempt} failed ({error}); retrying in {delay:.2f} s")
