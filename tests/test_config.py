from pathlib import Path

import pytest

import genai_sdk as genai
from genai_sdk._config import resolve_settings


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    s = resolve_settings(environ={})
    assert s.image is None and s.video is None
    assert s.speech_to_text == "whisper:tiny.en"
    assert s.text_to_speech == "piper:en_US-joe-medium"
    assert s.max_retries == 2 and s.account == "default"


def test_each_layer_overrides_the_one_below(tmp_path: Path) -> None:
    config = _write(
        tmp_path / "genai.toml",
        'image = "openai:dall-e-2"\naccount = "toml"\nmax_retries = 5\ntimeout = 30\n'
        '[profiles.prod]\naccount = "prod-profile"\n',
    )
    # toml over defaults
    s = resolve_settings(config, environ={})
    assert (s.image, s.account, s.max_retries, s.timeout) == ("openai:dall-e-2", "toml", 5, 30.0)
    # a profile over the toml's top level
    s = resolve_settings(config, "prod", environ={})
    assert s.account == "prod-profile" and s.max_retries == 5
    # environment over toml (and profile)
    env = {"GENAI_ACCOUNT": "env", "GENAI_MAX_RETRIES": "1"}
    s = resolve_settings(config, "prod", environ=env)
    assert (s.account, s.max_retries, s.image) == ("env", 1, "openai:dall-e-2")
    # keyword arguments over environment
    s = resolve_settings(config, "prod", environ=env, account="kwarg", max_retries=0)
    assert (s.account, s.max_retries) == ("kwarg", 0)


def test_genai_toml_in_the_working_folder_is_read_and_profile_from_env(tmp_path: Path) -> None:
    _write(tmp_path / "genai.toml", 'account = "here"\n[profiles.ci]\naccount = "ci"\n')
    assert resolve_settings(environ={}).account == "here"
    assert resolve_settings(environ={"GENAI_PROFILE": "ci"}).account == "ci"


def test_client_uses_the_layers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path / "genai.toml", 'image = "openai:gpt-image-1-mini"\naccount = "toml"\n')
    monkeypatch.setenv("GENAI_ACCOUNT", "env")
    client = genai.Client(max_retries=4)
    assert client.settings.image == "openai:gpt-image-1-mini"
    assert client.settings.account == "env"
    assert client.settings.max_retries == 4


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('imgae = "x"\n', "unknown setting(s) imgae"),
        ("max_retries = -1\n", "max_retries must be a whole number"),
        ('timeout = "soon"\n', "timeout must be a finite number of seconds"),
        ("image = [1]\n", "image must name a model"),
        ("image = \n", "not valid TOML"),
    ],
)
def test_bad_config_files_say_what_is_wrong(tmp_path: Path, text: str, fragment: str) -> None:
    config = _write(tmp_path / "bad.toml", text)
    with pytest.raises(genai.ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        resolve_settings(config, environ={})


def test_missing_profile_and_missing_file(tmp_path: Path) -> None:
    config = _write(tmp_path / "genai.toml", '[profiles.a]\naccount = "a"\n')
    with pytest.raises(genai.ConfigError, match=r"no \[profiles.b\] table \(profiles there: a\)"):
        resolve_settings(config, "b", environ={})
    with pytest.raises(genai.ConfigError, match="does not exist"):
        resolve_settings(tmp_path / "nope.toml", environ={})


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(genai.ConfigError, match="GENAI_TIMEOUT"):
        resolve_settings(environ={"GENAI_TIMEOUT": "-3"})


def test_unknown_keyword_is_refused() -> None:
    with pytest.raises(genai.ConfigError, match="unknown setting.*imagee.*known settings: image"):
        genai.Client(imagee="openai:dall-e-2")  # type: ignore[arg-type]  # a misspelt setting, on purpose


def test_unknown_ledger_and_policy_settings() -> None:
    with pytest.raises(genai.ConfigError, match="unknown ledger URL"):
        genai.Client(ledger="redis://x")
    with pytest.raises(genai.ConfigError, match="use one of off, standard, strict, monitor"):
        genai.Client(policy="/no/such/rules.toml")
