"""``[asterisk] reconnect_max_seconds``: the AMI reconnect backoff's cap, a number > 0 and <= 300."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import ConfigError, load_config


def test_two_seconds_by_default() -> None:
    assert load_config(env={}).asterisk.reconnect_max_seconds == 2.0


@pytest.mark.parametrize(("toml", "expected"), [("5", 5.0), ("0.5", 0.5), ("300", 300.0)])
def test_set_in_the_file_as_an_integer_or_a_float(tmp_path: Path, toml: str, expected: float) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(f"[asterisk]\nreconnect_max_seconds = {toml}\n", encoding="utf-8")
    value = load_config(path, env={}).asterisk.reconnect_max_seconds
    assert value == expected and isinstance(value, float)


def test_the_environment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text("[asterisk]\nreconnect_max_seconds = 5\n", encoding="utf-8")
    config = load_config(path, env={"CRMHUB_ASTERISK_RECONNECT_MAX_SECONDS": "1.5"})
    assert config.asterisk.reconnect_max_seconds == 1.5


@pytest.mark.parametrize("toml", ["0", "-1", "300.5", "1e9", "nan", "inf", '"2"', "true", "[2]"])
def test_a_bad_value_in_the_file_stops_the_hub_naming_the_key(tmp_path: Path, toml: str) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(f"[asterisk]\nreconnect_max_seconds = {toml}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^asterisk\.reconnect_max_seconds: expected a number"):
        load_config(path, env={})


@pytest.mark.parametrize(("text", "key"), [
    ("soon", "CRMHUB_ASTERISK_RECONNECT_MAX_SECONDS"), ("", "CRMHUB_ASTERISK_RECONNECT_MAX_SECONDS"),
    ("0", r"asterisk\.reconnect_max_seconds"), ("301", r"asterisk\.reconnect_max_seconds"),
    ("nan", r"asterisk\.reconnect_max_seconds"), ("inf", r"asterisk\.reconnect_max_seconds"),
])
def test_a_bad_override_stops_the_hub_naming_the_key(text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{key}: expected a number"):
        load_config(env={"CRMHUB_ASTERISK_RECONNECT_MAX_SECONDS": text})
