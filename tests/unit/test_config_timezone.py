"""``server.timezone``: the day the pages count "today" in; an unknown zone stops the hub."""

from __future__ import annotations

import pytest

from hub.config import ConfigError, load_config


def test_moscow_by_default_and_overridable() -> None:
    assert load_config(env={}).server.timezone == "Europe/Moscow"
    config = load_config(env={"CRMHUB_SERVER_TIMEZONE": "Asia/Novosibirsk"})
    assert config.server.timezone == "Asia/Novosibirsk"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../../etc/passwd", ""])
def test_an_unknown_zone_is_refused_with_its_key(zone: str) -> None:
    with pytest.raises(ConfigError, match=r"server\.timezone"):
        load_config(env={"CRMHUB_SERVER_TIMEZONE": zone})
