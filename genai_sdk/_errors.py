"""The exception tree. Every error the SDK raises is a GenAIError; foreign errors are mapped at the boundary.

All of them are importable from ``genai_sdk``; the tree is the one of the public contract (API.md, "Errors"), and
tests/test_exported_members.py checks that the classes, this drawing and the contract's drawing agree::

    GenAIError                        the base: catching it catches every error the SDK raises
    ├── ConfigError                   a setting, key, model name or extra is missing or wrong (the message says what)
    ├── InvalidRequestError           refused before anything was reserved or sent (bad size for the model, n too big)
    │   ├── UnsupportedError          the model cannot do this operation or honour this setting
    │   └── ModelRetiredError         the catalog knows the model was retired (.retired_on, .replacement)
    ├── ContentPolicyError            a prompt or output refused, locally or by the provider; never retried or charged
    ├── BudgetExceededError           the estimate exceeds the account's balance or budget; nothing was sent
    └── ProviderError                 the backend answered with an error or could not be reached (.retryable, .status)
        ├── AuthenticationError       the key was refused (401, 403); never retried
        ├── RateLimitError            429 after the retries, or the quota is exhausted (never retried)
        ├── ProviderUnavailableError  5xx answers, timeouts and connection failures, after the retries
        └── GenerationFailedError     the job ran and failed (a failed prediction, a local pipeline's error)
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# A URL's password, bearer tokens, and each provider's key shapes (from the providers' files, providers/<name>.json:
# "sk-...", "r8_..."): none may reach a message or repr.
_GENERIC_SECRETS = (
    re.compile(r"(://[^/:@\s]*:)[^@/\s]+(?=@)"),  # the password of a URL: postgresql://user:secret@host
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9_\-\.]{6,}"),
)
_secret_patterns: tuple[re.Pattern[str], ...] | None = None


def _patterns() -> tuple[re.Pattern[str], ...]:
    global _secret_patterns
    if _secret_patterns is None:  # read on first use: the providers' table is not imported with genai_sdk
        from .providers._specs import secret_patterns

        _secret_patterns = _GENERIC_SECRETS + secret_patterns()
    return _secret_patterns


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """Remove anything that looks like an API key, and every known secret, from ``text``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    for pattern in _patterns():
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[redacted]", text)
    return text


class GenAIError(Exception):
    """Base class of every error raised by genai_sdk."""

    def __init__(self, message: str) -> None:
        message = redact(message)
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ConfigError(GenAIError):
    """Something is missing or wrong in the configuration: the message says what to set or install."""


class InvalidRequestError(GenAIError):
    """The request was refused before anything was sent."""


class UnsupportedError(InvalidRequestError):
    """The model cannot do this operation or honour this setting."""


class ModelRetiredError(InvalidRequestError):
    """The model was retired by its provider."""

    def __init__(self, message: str, *, retired_on: str | None = None, replacement: str | None = None) -> None:
        super().__init__(message)
        self.retired_on = retired_on
        self.replacement = replacement


class ContentPolicyError(GenAIError):
    """A prompt or an output was refused by a content policy. Never retried, never charged."""

    def __init__(
        self, message: str, *, stage: str = "prompt", source: str = "local", categories: Sequence[str] = (),
        request_id: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.stage = stage
        self.source = source
        self.categories = list(categories)
        self.request_id = request_id


class BudgetExceededError(GenAIError):
    """The call's estimate exceeds the account's balance or budget; nothing was sent."""

    def __init__(
        self, message: str, *, account: str | None = None, needed: object = None, available: object = None
    ) -> None:
        super().__init__(message)
        self.account = account
        self.needed = needed
        self.available = available


class ProviderError(GenAIError):
    """The backend answered with an error, or could not be reached."""

    default_retryable = False

    def __init__(
        self, message: str, *, provider: str | None = None, status: int | None = None, request_id: str | None = None,
        retryable: bool | None = None, retry_after: float | None = None, code: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.request_id = request_id
        self.retryable = self.default_retryable if retryable is None else retryable
        self.retry_after = retry_after
        self.code = code

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, provider={self.provider!r}, status={self.status!r}, "
            f"request_id={self.request_id!r}, retryable={self.retryable!r})"
        )


class AuthenticationError(ProviderError):
    """The key was refused. Not retried."""


class RateLimitError(ProviderError):
    """Too many requests (after retries), or the quota is exhausted (never retried)."""

    default_retryable = True


class ProviderUnavailableError(ProviderError):
    """5xx answers, timeouts and connection failures, after retries."""

    default_retryable = True


class GenerationFailedError(ProviderError):
    """The job ran and failed."""


__all__ = [
    "AuthenticationError", "BudgetExceededError", "ConfigError", "ContentPolicyError", "GenAIError",
    "GenerationFailedError", "InvalidRequestError", "ModelRetiredError", "ProviderError", "ProviderUnavailableError",
    "RateLimitError", "UnsupportedError", "redact",
]  # fmt: skip
