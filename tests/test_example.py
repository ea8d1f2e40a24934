import os
import subprocess
import sys
from pathlib import Path

import genai_sdk as genai
from genai_sdk.testing import Emulator

from .conftest import REPO


def test_avocado_couch_example(genai_emulator: Emulator, tmp_path: Path) -> None:
    env = {**os.environ, **genai_emulator.env()}
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "avocado_couch.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "4 images from openai:dall-e-2" in done.stdout
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"avocado_couch{i}.jpg" for i in range(4)]
    images = [genai.Image.from_path(tmp_path / name) for name in names]
    assert all(i.media_type == "image/jpeg" and i.size == (512, 512) for i in images)
    assert all(i.provenance["model"] == "openai:dall-e-2" for i in images)
    assert len({i.data for i in images}) == 4
    (call,) = genai_emulator.calls("images.generate")
    assert call.json["prompt"] == "an avocado couch" and call.json["n"] == 4


def test_budget_example(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(REPO / "examples" / "budget.py")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "charged: 3.6000 credits ($0.036) balance: 6.4" in done.stdout
    assert "refused before sending: account 'alice' would spend 7.2000 credits this day, over its budget of 5" in done.stdout


def test_subtitles_example(tmp_path: Path) -> None:
    import pytest

    pytest.importorskip("piper", reason="the speech example needs the 'local' extra")
    done = subprocess.run([sys.executable, str(REPO / "examples" / "subtitles.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "avocados" in done.stdout.lower()
    assert (tmp_path / "script.srt").read_text(encoding="utf-8").startswith("1\n00:00:00,000 --> ")
    assert (tmp_path / "script.vtt").read_text(encoding="utf-8").startswith("WEBVTT")


def test_storyboard_example(genai_emulator: Emulator, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(REPO / "examples" / "storyboard.py"), str(tmp_path)],
                          env={**os.environ, **genai_emulator.env()}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert len(saved) == 3, "a 1-credit grant pays for three 0.3-credit images, whatever the interleaving"
    assert done.stdout.count("refused before sending") == 1 and "balance left: 0.1000 credits" in done.stdout
    assert len(genai_emulator.calls("replicate.predictions.create")) == 3, "the refused scene sent nothing"
    images = [genai.Image.from_path(tmp_path / name) for name in saved]
    assert all(i.media_type == "image/png" and i.size == (1344, 768) for i in images)
    assert all(i.provenance["model"] == "replicate:black-forest-labs/flux-schnell" for i in images)


def test_content_policy_example(tmp_path: Path) -> None:
    import pytest

    pytest.importorskip("onnxruntime", reason="the policy example's classifier needs the 'policy' extra")
    done = subprocess.run([sys.executable, str(REPO / "examples" / "content_policy.py")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "'an avocado couch in a sunlit loft': allowed" in out and "'a shot of espresso on a marble counter': allowed" in out
    assert "'a n.u.d.e portrait': refused (sexual, rules)" in out
    assert "'how to make a pipe b0mb at home': refused (illicit, rules)" in out
    assert "golden hour, 85mm lens': refused (sexual, classifier)" in out
    assert "made: 1 image; ['prompt: allow', 'output: allow']" in out
    assert "refused before sending: stage=prompt source=local categories=['illicit']" in out
    assert "monitor made it and flagged it: flag ['violence/graphic']" in out
    assert "refusal" in out and "prompt refused by local (illicit)" in out


def test_volume_example(tmp_path: Path) -> None:
    import json

    done = subprocess.run([sys.executable, str(REPO / "examples" / "volume.py")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("a yellow lamp: replicate:black-forest-labs/flux-schnell") for line in lines) or any(
        line.startswith("a yellow lamp: BudgetExceededError") for line in lines
    )
    made = [line for line in lines[:-1] if "Error" not in line]
    assert 4 <= len(made) <= 5 and "BudgetExceededError" in done.stdout  # the grant covers five at most
    saved = json.loads((tmp_path / "catalogue" / "results.json").read_text())
    assert len(saved) == len(made) and all(Path(image["path"]).exists() for r in saved for image in r["images"])
    assert genai.ImageResult.from_dict(saved[0], base_dir=tmp_path).images[0].data


def test_podcast_example(genai_emulator: Emulator, tmp_path: Path) -> None:
    import pytest

    pytest.importorskip("piper", reason="the podcast example needs the 'speech' extra")
    done = subprocess.run([sys.executable, str(REPO / "examples" / "podcast.py"), str(tmp_path)],
                          env={**os.environ, **genai_emulator.env()}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[1] for line in lines[:4]] == ["host", "guest", "host", "guest"]
    assert "(openai:tts-1)" in lines[1] and "(piper:en_US-joe-medium)" in lines[0]
    show = genai.Audio.from_path(tmp_path / "kitchen-science.mp3")
    assert show.duration is not None and show.duration > 5 and show.provenance
    assert [c.json["voice"] for c in genai_emulator.calls("audio.speech")] == ["nova", "nova"]


def test_clip_rank_example(tmp_path: Path) -> None:
    import pytest

    pytest.importorskip("transformers", reason="the CLIP example needs the 'local' extra")
    done = subprocess.run([sys.executable, str(REPO / "examples" / "clip_rank.py")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split("'")[1] for line in lines[:3]] == ["a red square", "a blue circle", "a green tree"]
    assert lines[3].startswith("classify: ") and all(label in lines[3] for label in ("cat", "dog", "car"))
    assert lines[4].startswith("best 2 of 4: scores ") and "credits" in lines[4]
