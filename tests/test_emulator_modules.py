"""The emulator is one server plus one module per API (``genai_sdk/testing/_api_<name>.py``, found without a list),
with no import cycle: an API module loads without the server's module and without any other API module, and the
shared wire module without either."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import genai_sdk.testing
from genai_sdk.testing import Emulator

SERVER = "genai_sdk.testing._server"
API_MODULES = sorted(
    f"genai_sdk.testing.{found.name}" for found in pkgutil.iter_modules(genai_sdk.testing.__path__) if found.name.startswith("_api_")
)


def _loaded_with(module: str, watched: list[str]) -> str:
    """Which of ``watched`` a fresh interpreter has loaded after importing ``module``."""
    code = f"import sys, {module}; print(','.join(m for m in {watched!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_the_openai_and_replicate_apis_are_modules_of_their_own() -> None:
    assert {"genai_sdk.testing._api_openai", "genai_sdk.testing._api_replicate"} <= set(API_MODULES)


@pytest.mark.parametrize("module", API_MODULES)
def test_an_api_module_imports_neither_the_server_nor_another_api(module: str) -> None:
    loaded = _loaded_with(module, [SERVER, *(m for m in API_MODULES if m != module)])
    assert loaded == "", f"{module} imported {loaded}"


def test_the_wire_module_imports_neither_the_server_nor_an_api() -> None:
    loaded = _loaded_with("genai_sdk.testing._wire", [SERVER, *API_MODULES])
    assert loaded == "", f"_wire imported {loaded}"


def test_the_server_serves_the_routes_of_every_api_module() -> None:
    with Emulator() as emulator:
        served = {(method, pattern.pattern, operation, api) for method, pattern, operation, api in emulator._routes}
        for module in API_MODULES:
            api = emulator.api(sys.modules[module].API.name)
            assert isinstance(api, sys.modules[module].API) and getattr(emulator, api.name) is api
            assert {(method, path, operation, api) for method, path, operation in api.routes} <= served
            assert set(api.env()) <= set(emulator.env())


def test_a_new_api_module_is_served_with_no_other_file_changed(tmp_path: Path) -> None:
    """A module ``_api_echo`` put next to the others (here: in a folder added to the package's path) is found,
    served, given its faults, and reachable as ``emulator.echo``; no list of APIs names it."""
    (tmp_path / "_api_echo.py").write_text(textwrap.dedent('''
        import json

        from genai_sdk.testing._wire import Host, _fault_response

        class EchoApi:
            name = "echo"
            routes = [("POST", r"^/echo/(?P<word>[a-z]+)$", "echo.say")]

            def __init__(self, host: Host) -> None:
                self._host = host

            def env(self):
                return {"ECHO_BASE_URL": self._host.url}

            def unreadable(self):
                return None

            def authorize(self, record):
                return None if record.headers.get("authorization") == "Key " + self._host.api_key else (401, {}, b"no")

            def fault_answer(self, fault):
                return _fault_response(fault)

            def answer(self, operation, params, record):
                return 200, {"Content-Type": "application/json"}, json.dumps({"said": params["word"]}).encode()

        API = EchoApi
    '''))
    code = textwrap.dedent(f'''
        import json, urllib.error, urllib.request
        import genai_sdk.testing
        genai_sdk.testing.__path__.append({str(tmp_path)!r})
        from genai_sdk.testing import Emulator

        def post(url, key):
            request = urllib.request.Request(url, data=b"{{}}", headers={{"Authorization": key}}, method="POST")
            try:
                with urllib.request.urlopen(request) as answer:
                    return answer.status, json.loads(answer.read())
            except urllib.error.HTTPError as error:
                return error.code, None

        with Emulator() as emulator:
            assert emulator.api("echo") is emulator.echo and emulator.env()["ECHO_BASE_URL"] == emulator.url
            assert post(emulator.url + "/echo/hello", "Key " + emulator.api_key) == (200, {{"said": "hello"}})
            assert post(emulator.url + "/echo/hello", "Key wrong")[0] == 401
            emulator.fail("echo.say", "server_error")
            assert post(emulator.url + "/echo/hello", "Key " + emulator.api_key)[0] == 500
            assert [(c.operation, c.status, c.fault) for c in emulator.calls("echo.say")] == [
                ("echo.say", 200, None), ("echo.say", 401, None), ("echo.say", 500, "server_error")]
        print("served")
    ''')
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "served", done.stdout + done.stderr
