"""The one path every call takes:

    resolve model -> validate -> policy.check(prompt) -> ledger.reserve(estimate)
      -> retry(provider call) for each backend call -> policy.check_output -> ledger.commit | ledger.release
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

from ._catalog import Catalog, ModelInfo, split_model_id
from ._config import Settings
from ._errors import ConfigError, ContentPolicyError, InvalidRequestError
from ._jobs import Job, build_image_job
from ._requests import Cost, ImageRequest, Progress, Request
from ._retry import Attempt, Deadline, RetryPolicy, acall_with_retry, call_with_retry
from .credits import Ledger
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
        today: Callable[[], date] = date.today,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.policy = policy
        self.ledger = ledger
        self.providers = providers
        self.retry = retry
        self._today = today

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
        if isinstance(request, ImageRequest):
            return build_image_job(
                request, model, provider, self.catalog, self.settings.credits_per_usd, self._today()
            )
        raise ConfigError(f"{request.modality} calls are not part of this release of genai-sdk yet")

    def estimate(self, request: Request) -> Cost:
        return self.build(request, estimate_only=True).estimate

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

    def _start(self, request: Request) -> tuple[Job[Any, Any, Any], str, Any]:
        job = self.build(request)
        self._check_prompt(job)
        request_id = uuid.uuid4().hex
        account = request.options.account or self.settings.account
        reservation = self.ledger.reserve(account, job.estimate.credits, job.estimate.usd, request_id, job.model.id)
        return job, request_id, reservation

    def _deadline(self, request: Request) -> Deadline:
        timeout = request.options.timeout if request.options.timeout is not None else self.settings.timeout
        return Deadline(timeout)

    @staticmethod
    def _reporter(request: Request) -> Callable[[Progress], None]:
        callback = request.options.on_progress
        return callback if callback is not None else (lambda progress: None)

    def _retry_hook(self, report: Callable[[Progress], None], done: list[int], total: int) -> Any:
        def on_retry(attempt: int, delay: float, error: BaseException) -> None:
            report(Progress("retrying", done[0], total, f"attempt {attempt} failed ({error}); retrying in {delay:.2f} s"))

        return on_retry

    def _finish(self, job: Job[Any, Any, Any], outcomes: list[Any], request_id: str) -> tuple[Any, Cost]:
        cost = job.cost(outcomes)
        result = job.result(outcomes, cost, request_id)
        self._check_output(result)
        return result, cost

    def run(self, request: Request) -> Any:
        job, request_id, reservation = self._start(request)
        report = self._reporter(request)
        deadline = self._deadline(request)
        total = len(job.parts)
        done = [0]
        try:
            report(Progress("started", 0, total, job.model.id))
            outcomes = []
            for index, part in enumerate(job.parts):

                def attempt(a: Attempt, part: Any = part, index: int = index) -> Any:
                    return job.call(part, CallContext(f"{request_id}-{index}", a.timeout, a.number))

                outcomes.append(
                    call_with_retry(
                        attempt,
                        self.retry,
                        deadline,
                        provider=job.model.provider,
                        on_retry=self._retry_hook(report, done, total),
                    )
                )
                done[0] += 1
                report(Progress("generating", done[0], total))
            result, cost = self._finish(job, outcomes, request_id)
        except BaseException:
            self.ledger.release(reservation)
            raise
        self.ledger.commit(reservation, cost.credits, cost.usd)
        report(Progress("done", total, total))
        return result

    async def arun(self, request: Request) -> Any:
        job, request_id, reservation = self._start(request)
        report = self._reporter(request)
        deadline = self._deadline(request)
        total = len(job.parts)
        done = [0]

        async def one(index: int, part: Any) -> Any:
            async def attempt(a: Attempt) -> Any:
                return await job.acall(part, CallContext(f"{request_id}-{index}", a.timeout, a.number))

            outcome = await acall_with_retry(
                attempt, self.retry, deadline, provider=job.model.provider, on_retry=self._retry_hook(report, done, total)
            )
            done[0] += 1
            report(Progress("generating", done[0], total))
            return outcome

        try:
            report(Progress("started", 0, total, job.model.id))
            if total == 1:
                outcomes = [await one(0, job.parts[0])]
            else:
                import asyncio

                async with asyncio.TaskGroup() as group:
                    tasks = [group.create_task(one(i, part)) for i, part in enumerate(job.parts)]
                outcomes = [task.result() for task in tasks]
            result, cost = self._finish(job, outcomes, request_id)
        except BaseExceptionGroup as group_error:
            self.ledger.release(reservation)
            raise group_error.exceptions[0] from None
        except BaseException:
            self.ledger.release(reservation)
            raise
        self.ledger.commit(reservation, cost.credits, cost.usd)
        report(Progress("done", total, total))
        return result
