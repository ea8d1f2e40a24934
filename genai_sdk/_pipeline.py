"""The one path every call takes:

    resolve model -> validate -> policy.check(prompt) -> ledger.reserve(estimate)
      -> retry(provider call) for each backend call -> policy.check_output -> ledger.commit | ledger.release
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ._catalog import Catalog, ModelInfo, split_model_id
from ._config import Settings
from ._errors import ConfigError, ContentPolicyError, InvalidRequestError
from ._jobs import Job, build_image_job
from ._requests import Cost, ImageRequest, Progress, Request, SynthesizeRequest, TranscribeRequest, VideoRequest
from ._retry import Attempt, Deadline, RetryPolicy, acall_with_retry, call_with_retry
from .credits import Ledger
from .credits._plans import Plan, UsdPlan
from .credits._rules import utcnow
from .policy import Policy
from .providers import ProviderPool
from .providers.base import CallContext, Provider

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

    def build(self, request: Request, *, estimate_only: bool = False) -> Job[Any, Any, Any]:
        if estimate_only:
            # A catalog model is priced without its provider: no key, no backend import, no network.
            model_id = self.model_id_for(request.modality, request.options.model)
            provider_name, model_name = split_model_id(model_id)
            known = self.catalog.get(f"{provider_name}:{model_name}")
            model, provider = (known, None) if known else self.resolve(request.modality, request.options.model)
        else:
            model, provider = self.resolve(request.modality, request.options.model)
        args = (model, provider, self.catalog, self.settings.credits_per_usd, self.clock().date())
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
        return self.plan.price(self.build(request, estimate_only=True).estimate)

    def _check_prompt(self, job: Job[Any, Any, Any]) -> None:
        decision = self.policy.check(job.policy_text)
        if not decision.allowed:
            raise ContentPolicyError(
                f"refused by the local content policy: {decision.reason}",
                stage="prompt",
                source="local",
                categories=decision.categories,
            )

    def _check_output(self, result: object) -> None:
        decision = self.policy.check_output(result)
        if not decision.allowed:
            raise ContentPolicyError(
                f"output refused by the local content policy: {decision.reason}",
                stage="output",
                source="local",
                categories=decision.categories,
            )

    # -- running ----------------------------------------------------------------------------------------------

    def _prepare(self, request: Request) -> tuple[Job[Any, Any, Any], str, str, Cost]:
        """Everything before the reservation: validation, the prompt check, the plan's grants, the estimate."""
        job = self.build(request)
        self._check_prompt(job)
        account = request.options.account or self.settings.account
        return job, os.urandom(16).hex(), account, self.plan.price(job.estimate)

    def _run(self, request: Request, job: Job[Any, Any, Any], request_id: str, reservation: Any) -> _Run:
        timeout = request.options.timeout if request.options.timeout is not None else self.settings.timeout
        return _Run(job, request_id, reservation, Deadline(timeout), request.options.on_progress)

    def _priced_result(self, run: _Run, outcomes: list[Any]) -> tuple[Any, Cost]:
        """Price what was produced and check it (the caller releases the reservation if this raises)."""
        cost = self.plan.price(run.job.cost(outcomes))
        result = run.job.result(outcomes, cost, run.request_id)
        self._check_output(result)
        return result, cost

    def run(self, request: Request) -> Any:
        job, request_id, account, estimate = self._prepare(request)
        self.plan.prepare(self.ledger, account, self.clock())
        reservation = self.ledger.reserve(account, estimate.credits, estimate.usd, request_id, job.model.id)
        run = self._run(request, job, request_id, reservation)
        try:
            run.report("started", job.model.id)
            outcomes = []
            for index, part in enumerate(job.parts):

                def attempt(a: Attempt, part: Any = part, index: int = index) -> Any:
                    return job.call(part, CallContext(f"{request_id}-{index}", a.timeout, a.number, run.on_step, run.cancelled))

                outcomes.append(
                    call_with_retry(attempt, self.retry, run.deadline, provider=job.model.provider, on_retry=run.on_retry)
                )
                run.part_done()
            result, cost = self._priced_result(run, outcomes)
        except BaseException:
            run.cancelled.set()
            self.ledger.release(reservation)
            raise
        self.ledger.commit(reservation, cost.credits, cost.usd)
        run.report("done")
        return result

    async def _ledger(self, operation: Callable[..., Any], *args: Any) -> Any:
        """A ledger operation from async code: in a worker thread when it may block (SQLite, PostgreSQL)."""
        if not getattr(self.ledger, "blocking", True):
            return operation(*args)
        import asyncio

        return await asyncio.to_thread(operation, *args)

    async def arun(self, request: Request) -> Any:
        job, request_id, account, estimate = self._prepare(request)
        await self._ledger(self.plan.prepare, self.ledger, account, self.clock())
        reservation = await self._ledger(self.ledger.reserve, account, estimate.credits, estimate.usd, request_id, job.model.id)
        run = self._run(request, job, request_id, reservation)

        async def one(index: int, part: Any) -> Any:
            async def attempt(a: Attempt) -> Any:
                return await job.acall(part, CallContext(f"{request_id}-{index}", a.timeout, a.number, run.on_step, run.cancelled))

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
                        lambda a: job.acall(job.parts[0], CallContext(f"{request_id}-0", a.timeout, a.number, run.on_step, run.cancelled)),
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
            result, cost = self._priced_result(run, outcomes)
        except BaseExceptionGroup as group_error:
            run.cancelled.set()
            await self._ledger(self.ledger.release, reservation)
            raise group_error.exceptions[0] from None
        except BaseException:  # a cancelled task too: local work in a thread stops at its next step
            run.cancelled.set()
            await self._ledger(self.ledger.release, reservation)
            raise
        await self._ledger(self.ledger.commit, reservation, cost.credits, cost.usd)
        run.report("done")
        return result


class _Run:
    """One call in flight: its job, ids, reservation, deadline and progress reporting."""

    __slots__ = ("job", "request_id", "reservation", "deadline", "callback", "done", "on_retry", "on_step", "cancelled")

    def __init__(
        self,
        job: Job[Any, Any, Any],
        request_id: str,
        reservation: Any,
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
