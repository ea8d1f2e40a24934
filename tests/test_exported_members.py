import genai_sdk

EXPECTED = [
    "AsyncClient", "Audio", "AuthenticationError", "BudgetExceededError", "Client", "ConfigError",
    "ContentPolicyError", "Cost", "GenAIError", "GenerationFailedError", "Image", "ImageResult",
    "InvalidRequestError", "LanguageGuess", "LedgerEntry", "ModelRetiredError", "PolicyDecision", "Progress",
    "ProviderError", "ProviderUnavailableError", "RateLimitError", "Segment", "SpeechResult", "Transcript",
    "UnsupportedError", "Video", "VideoResult", "Word", "__version__",
]


def test_all_is_pinned() -> None:
    assert sorted(genai_sdk.__all__) == sorted(EXPECTED)


def test_every_public_name_resolves() -> None:
    for name in genai_sdk.__all__:
        assert getattr(genai_sdk, name) is not None, name
    assert sorted(dir(genai_sdk)) == sorted(EXPECTED)


def test_public_classes_say_they_are_public() -> None:
    for name in genai_sdk.__all__:
        value = getattr(genai_sdk, name)
        if isinstance(value, type):
            assert value.__module__.startswith("genai_sdk."), name


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        genai_sdk.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_exception_tree() -> None:
    g = genai_sdk
    assert issubclass(g.ConfigError, g.GenAIError)
    assert issubclass(g.UnsupportedError, g.InvalidRequestError)
    assert issubclass(g.ModelRetiredError, g.InvalidRequestError)
    assert issubclass(g.InvalidRequestError, g.GenAIError)
    assert issubclass(g.ContentPolicyError, g.GenAIError)
    assert issubclass(g.BudgetExceededError, g.GenAIError)
    for sub in (g.AuthenticationError, g.RateLimitError, g.ProviderUnavailableError, g.GenerationFailedError):
        assert issubclass(sub, g.ProviderError)
    assert issubclass(g.ProviderError, g.GenAIError)
    assert not issubclass(g.ContentPolicyError, g.ProviderError)  # so the retry layer can never retry one
