"""openai-python's own generated tests for images, audio and moderations, run against the emulator.

The tests come from a copy of openai/openai-python: a checkout or a bare git repository, found at the path in
``GENAI_OPENAI_PYTHON_TESTS`` or, by convention, at ``../openai-python`` beside this repository. They are copied to a
temporary folder with real bytes in place of their ``b"Example data"`` placeholders (a PNG for ``image=`` and
``mask=``, an MP3 for ``file=``), given fixtures that point ``OpenAI``/``AsyncOpenAI`` at a running emulator, and run
in a child pytest. Their speech tests mock HTTP with respx; here the mock is a no-op and the check of the mocked JSON
becomes a check that real audio came back. The tests whose parameters the published spec says conflict fail with the
emulator's 400: they are listed in ``CONFLICTS`` and in docs/testing.md.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from genai_sdk.testing import Emulator

REPO = Path(__file__).resolve().parents[1]
# Read when the module is collected: the autouse fixture of conftest.py clears GENAI_* variables before each test.
SNAPSHOT = os.environ.get("GENAI_OPENAI_PYTHON_TESTS")
FILES = (
    "tests/utils.py",
    "tests/api_resources/test_images.py",
    "tests/api_resources/test_moderations.py",
    "tests/api_resources/audio/test_speech.py",
    "tests/api_resources/audio/test_transcriptions.py",
    "tests/api_resources/audio/test_translations.py",
)
# test (without its parameters) -> the emulator's answer, because the spec says its parameters conflict
CONFLICTS = {
    "test_method_create_variation_with_all_params": "400 model: variations take dall-e-2 only, not gpt-image-1",
    "test_method_edit_with_all_params_overload_1": "400 response_format: gpt-image-2 always answers base64",
    "test_method_edit_with_all_params_overload_2": "400 response_format: gpt-image-2 always answers base64",
    "test_method_generate_with_all_params_overload_1": "400 style: dall-e-3 only (and response_format: dall-e only)",
    "test_method_generate_with_all_params_overload_2": "400 style: dall-e-3 only (and response_format: dall-e only)",
    "test_method_create_with_all_params_overload_1": "400 timestamp_granularities needs verbose_json, which gpt-4o-transcribe lacks",
    "test_method_create_with_all_params_overload_2": "400 timestamp_granularities needs verbose_json, which gpt-4o-transcribe lacks",
    "test_method_create_with_all_params": "speech: 400 stream_format 'sse' is not supported for tts-1",
}
CONFLICT_FILES = {  # test_method_create_with_all_params is a conflict in test_speech only (translations pass)
    "test_method_create_with_all_params": "test_speech",
}

CONFTEST = '''
import asyncio
import inspect
import os

import pytest
from openai import AsyncOpenAI, OpenAI

base_url = os.environ["TEST_API_BASE_URL"]
api_key = "My API Key"


class _NoRoute:
    def mock(self, *args, **kwargs):
        return self


class NoMock:
    """respx's router, inert: the requests reach the emulator."""

    def post(self, *args, **kwargs):
        return _NoRoute()


def pytest_configure(config):
    config.addinivalue_line("markers", "respx2(base_url): respx's marker, inert here")


@pytest.fixture
def respx2_mock():
    return NoMock()


@pytest.fixture(scope="session")
def client(request):
    strict = getattr(request, "param", True)
    with OpenAI(base_url=base_url, api_key=api_key, _strict_response_validation=strict) as made:
        yield made


@pytest.fixture
def async_client(request):
    param = getattr(request, "param", True)
    strict = param if isinstance(param, bool) else param.get("strict", True)
    http_client = None
    if isinstance(param, dict) and param.get("http_client") == "aiohttp":
        pytest.importorskip("aiohttp", reason="aiohttp is not installed (pip install 'openai[aiohttp]')")
        from openai import DefaultAioHttpClient

        http_client = DefaultAioHttpClient()
    return AsyncOpenAI(base_url=base_url, api_key=api_key, _strict_response_validation=strict, http_client=http_client)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Run coroutine tests in a fresh event loop (instead of pytest-asyncio), closing their client in it."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}

    async def run():
        try:
            await pyfuncitem.obj(**args)
        finally:
            if "async_client" in args:
                await args["async_client"].close()

    asyncio.run(run())
    return True
'''

REAL_MEDIA = '''
import io
from pathlib import Path

import av

HERE = Path(__file__).parent
REAL_IMAGE = (HERE / "image.png").read_bytes()
REAL_MASK = (HERE / "mask.png").read_bytes()
REAL_AUDIO = (HERE / "speech.mp3").read_bytes()


def assert_real_audio(data):
    with av.open(io.BytesIO(data)) as container:
        frames = list(container.decode(audio=0))
    assert frames and sum(f.samples for f in frames) > 0, "the answer is no audio"
'''


def _snapshot() -> tuple[Path, bool] | None:
    """The copy of openai-python: (path, is_bare_git)."""
    for candidate in [Path(SNAPSHOT)] if SNAPSHOT else [REPO.parent / "openai-python"]:
        if (candidate / FILES[1]).is_file():
            return candidate, False
        if (candidate / "HEAD").is_file() and (candidate / "objects").is_dir():
            return candidate, True
        if (candidate / ".git").exists() and (candidate / FILES[1]).is_file():
            return candidate, False
    return None


def _read(snapshot: Path, bare: bool, name: str) -> str:
    if not bare:
        return (snapshot / name).read_text()
    shown = subprocess.run(["git", "--git-dir", str(snapshot), "show", f"HEAD:{name}"], capture_output=True, text=True, check=True)
    return shown.stdout


def _substituted(name: str, source: str) -> str:
    if name.endswith("utils.py"):
        return source
    for param, value in (("image", "REAL_IMAGE"), ("mask", "REAL_MASK"), ("file", "REAL_AUDIO")):
        source = source.replace(f'{param}=b"Example data"', f"{param}={value}")
    source = source.replace('speech.json() == {"foo": "bar"}', "assert_real_audio(speech.content) is None")
    assert "Example data" not in source, f"a placeholder of {name} has no real bytes to stand for it"
    imports = "from tests.real_media import REAL_AUDIO, REAL_IMAGE, REAL_MASK, assert_real_audio\n"
    return re.sub(r"^(from tests\.utils import .*\n)", lambda m: m.group(1) + imports, source, count=1, flags=re.M)


def _media(folder: Path) -> None:
    from PIL import Image

    from genai_sdk._audio import encode
    from genai_sdk.testing._media_maker import make_image, make_speech_wav

    picture = Image.open(io.BytesIO(make_image("a sea otter", 256, 256))).convert("RGBA")
    picture.save(folder / "image.png")
    mask = Image.new("RGBA", (256, 256), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (64, 64, 192, 192))
    mask.save(folder / "mask.png")
    wav = make_speech_wav("I want to kill them.")
    with __import__("wave").open(io.BytesIO(wav)) as reader:
        pcm = reader.readframes(reader.getnframes())
    (folder / "speech.mp3").write_bytes(encode(pcm, 24000, "mp3").data)


def test_openai_python_generated_tests_pass_against_the_emulator(tmp_path: Path) -> None:
    pytest.importorskip("openai", reason="openai-python is not installed (pip install 'genai-sdk[openai]')")
    pytest.importorskip("av", reason="PyAV is not installed (pip install 'genai-sdk[openai]')")
    found = _snapshot()
    if found is None:
        pytest.skip("no copy of openai/openai-python: set GENAI_OPENAI_PYTHON_TESTS to a checkout or bare git repository "
                    "of it, or clone it to ../openai-python beside this repository")  # fmt: skip
    snapshot, bare = found
    tests = tmp_path / "tests"
    for package in ("", "api_resources", "api_resources/audio", "respx2"):
        (tests / package).mkdir(parents=True, exist_ok=True)
        (tests / package / "__init__.py").write_text("class MockRouter: ...\n" if package == "respx2" else "")
    for name in FILES:
        (tmp_path / name).write_text(_substituted(name, _read(snapshot, bare, name)))
    (tests / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    (tests / "real_media.py").write_text(textwrap.dedent(REAL_MEDIA))
    _media(tests)
    # openai-python marks translations and variations deprecated (typing_extensions' "deprecated"); its tests call them.
    ini = "[pytest]\nfilterwarnings =\n    error\n    ignore::ResourceWarning\n    ignore:deprecated$:DeprecationWarning\n"
    (tmp_path / "pytest.ini").write_text(ini)
    report = tmp_path / "report.xml"
    with Emulator(any_key=True) as emulator:
        env = {**os.environ, "TEST_API_BASE_URL": emulator.openai_base_url, "PYTHONPATH": str(tmp_path)}
        env.pop("OPENAI_API_KEY", None)
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:genai_sdk", "-p", "no:anyio",
             "--rootdir", str(tmp_path), "-c", str(tmp_path / "pytest.ini"), f"--junitxml={report}", "tests"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    assert report.exists(), done.stdout[-4000:] + done.stderr[-4000:]
    outcomes: dict[str, tuple[str, str]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        test_id = f"{case.get('classname')}::{case.get('name')}"
        problem = next(iter(case), None)
        outcomes[test_id] = (problem.tag if problem is not None else "passed", (problem.get("message") or "") if problem is not None else "")
    assert len(outcomes) >= 150, done.stdout[-4000:]

    def conflict(test_id: str) -> bool:
        name = test_id.rsplit("::", 1)[1].split("[")[0]
        return name in CONFLICTS and CONFLICT_FILES.get(name, "") in test_id

    unexpected = {t: o for t, o in outcomes.items() if not conflict(t) and o[0] not in ("passed", "skipped")}
    assert not unexpected, "\n".join(f"{t}: {o[1][:300]}" for t, o in unexpected.items())
    skipped = {t: o for t, o in outcomes.items() if o[0] == "skipped"}
    assert all("aiohttp" in t for t in skipped), skipped
    for test_id, (outcome, message) in outcomes.items():
        if conflict(test_id) and outcome != "skipped":
            assert outcome == "failure" and "400" in message, f"{test_id} was expected to meet a 400: {outcome} {message[:300]}"
