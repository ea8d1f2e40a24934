"""genai_sdk: hosted and local generative-AI backends behind one client.

Importing the package is cheap: the exception tree is loaded now, everything else on first use, and no backend
library (openai, torch, diffusers, faster-whisper, piper) is imported until one of its models is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._errors import (
    AuthenticationError,
    BudgetExceededError,
    ConfigError,
    ContentPolicyError,
    GenAIError,
    GenerationFailedError,
    InvalidRequestError,
    ModelRetiredError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitError,
    UnsupportedError,
)

__version__ = "0.1.0"

_LAZY = {
    "Client": "._client",
    "AsyncClient": "._client",
    "BatchResults": "._batch",
    "CallEvent": "._observe",
    "Job": "._longjobs",
    "Image": "._media",
    "Video": "._media",
    "Audio": "._media",
    "Cost": "._requests",
    "Progress": "._requests",
    "ImageResult": "._requests",
    "ImageScores": "._requests",
    "TextScore": "._requests",
    "Classification": "._requests",
    "LabelScore": "._requests",
    "VideoResult": "._requests",
    "SpeechResult": "._requests",
    "Transcript": "._requests",
    "Segment": "._requests",
    "Word": "._requests",
    "Turn": "._requests",
    "LanguageGuess": "._requests",
    "PolicyDecision": "._requests",
    "LedgerEntry": "._requests",
}

if TYPE_CHECKING:
    from ._batch import BatchResults
    from ._client import AsyncClient, Client
    from ._longjobs import Job
    from ._media import Audio, Image, Video
    from ._observe import CallEvent
    from ._requests import (
        Classification,
        Cost,
        ImageResult,
        ImageScores,
        LabelScore,
        LanguageGuess,
        LedgerEntry,
        PolicyDecision,
        Progress,
        Segment,
        SpeechResult,
        TextScore,
        Transcript,
        Turn,
        VideoResult,
        Word,
    )


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'genai_sdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AsyncClient",
    "Audio",
    "AuthenticationError",
    "BatchResults",
    "BudgetExceededError",
    "CallEvent",
    "Classification",
    "Client",
    "ConfigError",
    "ContentPolicyError",
    "Cost",
    "GenAIError",
    "GenerationFailedError",
    "Image",
    "ImageResult",
    "ImageScores",
    "InvalidRequestError",
    "Job",
    "LabelScore",
    "LanguageGuess",
    "LedgerEntry",
    "ModelRetiredError",
    "PolicyDecision",
    "Progress",
    "ProviderError",
    "ProviderUnavailableError",
    "RateLimitError",
    "Segment",
    "SpeechResult",
    "TextScore",
    "Transcript",
    "Turn",
    "UnsupportedError",
    "Video",
    "VideoResult",
    "Word",
    "__version__",
]
