"""Security finding 9: inputs that answered 500 instead of 4xx — a lone UTF-16 surrogate (``\\ud800``)
in any JSON string (the password at login too), control characters, dates near year 1 or 9999 with
an offset, integers beyond 64 bits, JSON nested too deep. One place (``hub.web.errors.json_body``,
``hub.crm.validate.parse_datetime``/``parse_date``) refuses them."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.conftest import Api
from tests.integration.test_web_pages import logged_in, page

SURROGATE = '"\\ud800"'  # as it travels in JSON: json.dumps would not let us write it
FAR_DATES = ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "1899-12-31T00:00:00Z",
             "2201-01-01T00:00:00Z")


async def raw(api: Api | TestClient, method: str, path: str, body: str) -> tuple[int, Any]:
    client = api.client if isinstance(api, Api) else api
    headers = {"Content-Type": "application/json", **(api.auth() if isinstance(api, Api) else {})}
    async with client.request(method, path, data=body.encode(), headers=headers) as response:
        return response.status, await response.json()


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("POST", "/api/v1/clients", '{"name": ' + SURROGATE + "}", "name"),
    ("POST", "/api/v1/clients", '{"name": "ok", "phones": ["+7916", ' + SURROGATE + "]}", "phones.1"),
    ("POST", "/api/v1/clients", '{"name": "a\\u0007b"}', "name"),
    ("POST", "/api/v1/tasks", '{"subject": ' + SURROGATE + "}", "subject"),
    ("POST", "/api/v1/messages",
     '{"channel": "sms", "client_id": 123456789012345678901234567890, "text": "x"}', "client_id"),
    ("POST", "/api/v1/clients", '{"name": "ok", "custom": {"x": 1e999}}', "custom.x"),
])
async def test_text_and_numbers_nothing_can_store_are_422(agent: Api, method: str, path: str, body: str,
                                                          field: str) -> None:
    status, answer = await raw(agent, method, path, body)
    assert status == 422, answer
    assert field in answer["error"]["fields"], answer


async def test_a_surrogate_in_the_password_at_login_is_422(client: TestClient, agent: Api) -> None:
    status, answer = await raw(client, "POST", "/api/v1/auth/token",
                               '{"login": "agent", "password": ' + SURROGATE + "}")
    assert status == 422 and "password" in answer["error"]["fields"]


async def test_json_nested_too_deep_is_400(agent: Api) -> None:
    for depth in (40, 5000):
        status, answer = await raw(agent, "POST", "/api/v1/clients",
                                   '{"name": "ok", "custom": ' + "[" * depth + "]" * depth + "}")
        assert status == 400, (depth, answer)


async def test_dates_near_year_1_or_9999_are_refused_not_500(client: TestClient, agent: Api) -> None:
    made = await agent.post("/api/v1/clients", {"name": "ООО «Ромашка»"}, expect=201)
    deal = await agent.post("/api/v1/deals", {"title": "Сделка", "client_id": made["id"]}, expect=201)
    for moment in FAR_DATES:
        answer = await agent.patch(f"/api/v1/deals/{deal['id']}", {"next_interaction_at": moment}, expect=422)
        assert "next_interaction_at" in answer["error"]["fields"], moment
        answer = await agent.post("/api/v1/tasks", {"subject": "Позвонить", "due_at": moment}, expect=422)
        assert "due_at" in answer["error"]["fields"], moment
        answer = await agent.get("/api/v1/calls", params={"since": moment}, expect=422)
        assert "since" in answer["error"]["fields"], moment
    cursor = "YzowMDAxLTAxLTAxVDAwOjAwOjAwKzA1OjAwfDE"  # c:0001-01-01T00:00:00+05:00|1
    answer = await agent.get("/api/v1/conversations", params={"cursor": cursor}, expect=422)
    assert "cursor" in answer["error"]["fields"]
    await logged_in(client, agent)
    for query in ("since=0001-01-01&until=0001-01-02", "since=9999-12-30&until=9999-12-31"):
        await page(client, f"/reports/funnel?{query}")  # an impossible period falls back, never 500
        await page(client, f"/calls?{query.replace('since', 'from').replace('until', 'to')}")


async def test_odd_numbers_in_page_queries_are_never_500(client: TestClient, agent: Api) -> None:
    """The fuzz's find: "²" passes str.isdigit() but not int(), and int() refuses 5,000 digits."""
    made = await agent.post("/api/v1/clients", {"name": "ООО «Ромашка»"}, expect=201)
    deal = await agent.post("/api/v1/deals", {"title": "Сделка", "client_id": made["id"]}, expect=201)
    await logged_in(client, agent)
    for odd in ("²", "１", "9" * 5000, "-1"):
        for path in (f"/deals?responsible={odd}&pipeline={odd}", f"/deals/list?responsible={odd}",
                     f"/tasks?deal_id={odd}&client_id={odd}&assignee={odd}", f"/tasks/{odd}",
                     f"/reports/funnel?responsible={odd}&pipeline={odd}", f"/inbox?c={odd}",
                     f"/calls?agent={odd}", f"/deals/{deal['id']}?move={odd}", f"/clients?manager={odd}",
                     f"/api/v1/calls?agent_id={odd}"):
            async with client.get(path, allow_redirects=False) as response:
                assert response.status < 500, (path[:80], response.status)
