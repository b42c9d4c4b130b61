"""How long a call's grant lasts (``hub.crm.access.grant_cutoff``): the oldest grant still valid."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hub.crm.access import CallGrant, grant_cutoff

MOSCOW = ZoneInfo("Europe/Moscow")  # UTC+3


def test_until_the_end_of_the_day_in_the_servers_time_zone() -> None:
    # 23:30 UTC is 02:30 the next day in Moscow: that day began at 21:00 UTC
    now = datetime(2026, 12, 7, 23, 30, tzinfo=UTC)
    assert grant_cutoff(CallGrant("end_of_day"), now, MOSCOW) == datetime(2026, 12, 7, 21, 0, tzinfo=UTC)
    assert grant_cutoff(CallGrant("end_of_day"), now, UTC) == datetime(2026, 12, 7, 0, 0, tzinfo=UTC)


def test_for_hours_or_never() -> None:
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    assert grant_cutoff(CallGrant("hours", 3), now, MOSCOW) == now - timedelta(hours=3)
    assert grant_cutoff(CallGrant("off", 3), now, MOSCOW) is None
