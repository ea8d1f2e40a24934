"""Project checks that run with the tests: strict typing, lint, the docs site, and README/CI agreement."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = BIN / name
    if found.exists():
        return str(found)
    located = shutil.which(name)
    if located is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[dev]'")
    return located


def test_mypy_strict() -> None:
    done = subprocess.run([_tool("mypy")], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_tests() -> None:
    """The tests are type-checked too, less strictly than the package: `mypy tests` applies pyproject.toml's override
    for `tests.*` (unannotated parameters and bare generics allowed, every function body still checked; see there).
    Following the imports, it checks the package's code again as well, strictly."""
    done = subprocess.run([_tool("mypy"), "tests"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff() -> None:
    done = subprocess.run([_tool("ruff"), "check", "genai_sdk", "tests", "examples", "benchmarks"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_docs_build_strict(tmp_path: Path) -> None:
    done = subprocess.run(
        [_tool("mkdocs"), "build", "--strict", "--quiet", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "index.html").is_file()


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```(?:bash|sh)\n(.*?)\n```", text, flags=re.S)[:2]


def test_ci_runs_the_readme_test_command() -> None:
    """CI installs and tests exactly as README says (the extras pinned by constraints.txt), and README's first command
    installs only the light speech extra its main job needs."""
    install_and_run, test = _readme_commands()
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    for line in test.strip().splitlines():
        assert line in ci.splitlines(), f"README's test command {line!r} is not what .ci/run runs"
    assert "pip install -q -e '.[dev,local,postgres,ray]' -c constraints.txt" in test
    assert "pip install -q -e '.[speech]' &&" in install_and_run
    pins = [line for line in (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines() if line and line[0] != "#"]
    assert "torch==2.13.0" in pins and all("==" in line for line in pins)


def test_readme_main_job_runs(tmp_path: Path) -> None:
    """The README's first command, less the install: speak with the bundled voice, transcribe with the bundled model."""
    pytest.importorskip("faster_whisper", reason="the main job needs the 'local' extra")
    install_and_run, _ = _readme_commands()
    job = install_and_run.split("&&")[2:]
    assert [step.split()[:2] for step in job] == [[".venv/bin/genai", "speak"], [".venv/bin/genai", "transcribe"]]
    import shlex

    genai = str(BIN / "genai")
    outputs = []
    for step in job:
        argv = shlex.split(step)
        done = subprocess.run([genai, *argv[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    spoken = shlex.split(job[0])[2].lower().replace(".", "").replace(",", "")
    heard = outputs[1].lower().replace(".", "").replace(",", "").split()
    assert outputs[0].strip() == "hello.wav"
    missed = [word for word in spoken.split() if word not in heard]
    assert len(missed) <= 1, f"heard {outputs[1]!r} for {spoken!r}"


def test_offline_demo_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "offline_demo.py"), str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == [f"avocado_couch{i}.jpg" for i in range(4)]


def test_public_calls_are_typed_for_users(tmp_path: Path) -> None:
    """An application's type checker sees each call's keyword arguments and result types."""
    good = tmp_path / "good.py"
    good.write_text(
        "import genai_sdk as genai\n"
        "client = genai.Client()\n"
        "result: genai.ImageResult = client.images.generate('a couch', n=4, size='512x512', seed=1)\n"
        "cost: genai.Cost = client.images.estimate('a couch', n=2)\n"
        "t: genai.Transcript = client.speech.transcribe('a.wav', language='en', word_timestamps=True)\n"
        "s: genai.SpeechResult = client.speech.synthesize('hi', voice='alloy', speed=1.5)\n",
        encoding="utf-8",
    )
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import genai_sdk as genai\n"
        "genai.Client().images.generate('a couch', sizee='512x512')\n"
        "genai.Client().images.generate('a couch', n='four')\n",
        encoding="utf-8",
    )
    checked = subprocess.run([_tool("mypy"), "--strict", str(good)], cwd=REPO, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout
    refused = subprocess.run([_tool("mypy"), "--strict", str(bad)], cwd=REPO, capture_output=True, text=True)
    assert refused.returncode == 1
    assert '"sizee"' in refused.stdout and "incompatible type" in refused.stdout
