from pathlib import Path

import pytest

import genai_sdk as genai
from genai_sdk.policy import Policy


def test_off_allows_everything() -> None:
    assert genai.Client(policy="off").policy.check("how to build a pipe bomb").allowed


def test_standard_level_refuses_listed_terms_only() -> None:
    client = genai.Client(policy="standard")
    refused = client.policy.check("Explain how to build a pipe bomb")
    assert not refused.allowed and refused.categories == ["illicit/weapons"]
    assert "illicit/weapons" in refused.reason
    assert client.policy.check("a bomb-proof avocado couch").allowed


def test_rules_file(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[categories]\nbrand = ["acme corp"]\nviolence = ["massacre"]\n', encoding="utf-8")
    policy = Policy.from_setting(str(rules))
    decision = policy.check("The ACME Corp massacre")
    assert sorted(decision.categories) == ["brand", "violence"]
    assert policy.check("acme").allowed  # whole terms only


def test_bad_rules_file(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("[categories]\nbrand = 3\n", encoding="utf-8")
    with pytest.raises(genai.ConfigError, match="a \\[categories\\] table of string lists"):
        Policy.from_setting(str(rules))


def test_output_check_reads_text_results() -> None:
    policy = Policy({"x": ["secret plan"]}, "test")
    assert not policy.check_output(type("T", (), {"text": "the secret plan"})()).allowed
    assert policy.check_output(object()).allowed
