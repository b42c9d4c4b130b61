"""The /calls journal page over HTTP: rows in Russian, filters (missed, agent, direction, dates), the
recording player only where there is a recording, cursor paging, the access rule, the empty state."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from hub.web.views import calls_journal
from tests.integration import test_api_calls
from tests.integration.conftest import Api
from tests.integration.test_web_pages import logged_in, page

# the calls of /api/v1/calls's tests (a1…a5, two with a recording, one of them gone) and their config
config, recordings, world = test_api_calls.config, test_api_calls.recordings, test_api_calls.world


def keys(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-call-id="(\d+)"', html)]


async def test_the_journal_lists_filters_and_plays(client: TestClient, manager: Api, agent: Api,
                                                   world: dict[str, Any]) -> None:
    calls = world["calls"]
    await logged_in(client, manager)
    html = await page(client, "/calls")
    assert keys(html) == [calls[k]["id"] for k in ("a5", "a4", "a3", "a2", "a1")]
    assert "15.06.2030 12:00" in html  # the start in Russian format, the server's time zone
    assert f'<a href="/clients/{world["own"]["id"]}">ООО Агентов</a>' in html
    assert "Пропущен" in html and "Сброшен" in html and "Иван Агентов" in html and "0:03 / 0:37" in html
    assert html.count('<audio controls preload="metadata"') == 2  # a1 and a5 have a recording
    assert f'src="/api/v1/calls/{calls["a1"]["id"]}/recording"' in html
    assert "Файл записи не найден" in html and "Нет записи" in html
    assert "Телефония ещё не подключена" not in html  # calls exist: the journal, not the empty state

    missed = await page(client, "/calls?missed=1")
    assert keys(missed) == [calls["a4"]["id"], calls["a2"]["id"]]
    assert keys(await page(client, "/calls?direction=outbound")) == [calls["a3"]["id"]]
    assert keys(await page(client, f"/calls?agent={agent.id}&missed=1")) == [calls["a4"]["id"]]
    assert keys(await page(client, "/calls?from=2030-06-15&to=2030-06-15")) == keys(html)
    none = await page(client, "/calls?from=2030-06-16")
    assert keys(none) == [] and "Нет подходящих звонков." in none
    assert keys(await page(client, "/calls?from=junk&direction=sideways&agent=x")) == keys(html)


async def test_paging_and_access(client: TestClient, agent: Api, admin: Api, world: dict[str, Any],
                                 app: web.Application, monkeypatch: Any) -> None:
    monkeypatch.setattr(calls_journal, "PAGE_SIZE", 2)
    # a4 rang the agent: with the call's grant on, its client's calls (a2 too) are hers for the day
    await admin.patch("/api/v1/settings/access", {"call_grant": "off"})
    await logged_in(client, agent)  # an agent sees the calls they took or tried and their clients' calls
    first = await page(client, "/calls")
    assert len(keys(first)) == 2
    cursor = re.search(r'hx-get="/calls\?cursor=([^"]+)"', first)
    assert cursor is not None
    more = await page(client, "/calls?cursor=" + cursor.group(1), headers={"HX-Request": "true"})
    assert "<tr" in more and "<html" not in more
    seen = keys(first) + keys(more)
    assert world["calls"]["a2"]["id"] not in seen  # agent2's missed call of another manager's client


async def test_no_telephony_and_no_calls_is_an_honest_empty_state(client: TestClient, agent: Api) -> None:
    await logged_in(client, agent)
    html = await page(client, "/calls")
    assert "Телефония ещё не подключена" in html and "<table" not in html
