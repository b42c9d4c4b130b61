"""The live event stream, over real HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from hub.web.keys import BUS, STREAMS
from tests.integration.conftest import Api, until


class Stream:
    """Reads server-sent events from a response: ``await stream.next()`` → {id, event, data}."""

    def __init__(self, response: ClientResponse) -> None:
        self.response = response
        self.comments: list[str] = []

    async def next(self, within: float = 5.0) -> dict[str, Any]:
        event: dict[str, Any] = {}
        data: list[str] = []
        async with asyncio.timeout(within):
            while True:
                raw = await self.response.content.readline()
                if not raw:
                    raise EOFError("the stream ended")
                line = raw.decode("utf-8").rstrip("\r\n")
                if line == "":
                    if data:
                        event["data"] = json.loads("\n".join(data))
                        return event
                    event = {}
                    continue
                if line.startswith(":"):
                    self.comments.append(line)
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "data":
                    data.append(value)
                elif name in ("id", "event", "retry"):
                    event[name] = value

    async def until_event(self, name: str, within: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(within):
            while True:
                event = await self.next(within)
                if event.get("event") == name:
                    return event


def seq(event_id: str) -> int:
    return int(event_id.split("-")[1])


async def open_stream(api: Api, headers: dict[str, str] | None = None,
                      path: str = "/api/v1/events") -> Stream:
    response = await api.client.get(path, headers={**api.auth(), **(headers or {})})
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/event-stream")
    return Stream(response)


async def new_client(admin: Api, name: str = "ООО Ромашка") -> dict[str, Any]:
    return await admin.post("/api/v1/clients", {"name": name}, expect=201)


async def test_an_event_from_another_users_action_arrives_with_an_id(admin: Api, agent: Api) -> None:
    stream = await open_stream(agent)
    client = await new_client(admin)
    deal = await admin.post("/api/v1/deals", {"title": "Поставка труб", "client_id": client["id"],
                                              "responsible_id": agent.id}, expect=201)
    event = await stream.until_event("deal.created")
    assert event["id"] and "-" in event["id"]
    assert event["data"]["deal"]["id"] == deal["id"]
    assert event["data"]["deal"]["title"] == "Поставка труб"
    stream.response.close()


async def test_events_are_only_for_those_who_may_see_them(admin: Api, agent: Api, agent2: Api) -> None:
    stream = await open_stream(agent2)
    client = await new_client(admin)
    await admin.post("/api/v1/deals", {"title": "Чужая", "client_id": client["id"],
                                       "responsible_id": agent.id}, expect=201)
    mine = await admin.post("/api/v1/deals", {"title": "Своя", "client_id": client["id"],
                                              "responsible_id": agent2.id}, expect=201)
    event = await stream.until_event("deal.created")
    assert event["data"]["deal"]["id"] == mine["id"]  # the other agent's deal never came
    stream.response.close()


async def test_reconnect_with_last_event_id_gets_what_was_missed(admin: Api, agent: Api) -> None:
    client = await new_client(admin)
    stream = await open_stream(agent)
    await admin.post("/api/v1/deals", {"title": "Первая", "client_id": client["id"],
                                       "responsible_id": agent.id}, expect=201)
    first = await stream.until_event("deal.created")
    stream.response.close()
    missed = []
    for title in ("Вторая", "Третья"):
        missed.append(await admin.post("/api/v1/deals", {"title": title, "client_id": client["id"],
                                                         "responsible_id": agent.id}, expect=201))
    again = await open_stream(agent, {"Last-Event-ID": first["id"]})
    got = [await again.until_event("deal.created") for _ in missed]
    assert [e["data"]["deal"]["id"] for e in got] == [d["id"] for d in missed]
    assert all(seq(e["id"]) > seq(first["id"]) for e in got)
    # Nothing is sent twice: a new event follows the replay directly.
    later = await admin.post("/api/v1/deals", {"title": "Четвёртая", "client_id": client["id"],
                                               "responsible_id": agent.id}, expect=201)
    assert (await again.until_event("deal.created"))["data"]["deal"]["id"] == later["id"]
    again.response.close()


async def test_last_event_id_as_query_parameter(admin: Api, agent: Api) -> None:
    stream = await open_stream(agent)
    client = await new_client(admin)
    await admin.post("/api/v1/deals", {"title": "A", "client_id": client["id"], "responsible_id": agent.id},
                     expect=201)
    first = await stream.until_event("deal.created")
    stream.response.close()
    deal = await admin.post("/api/v1/deals", {"title": "B", "client_id": client["id"],
                                              "responsible_id": agent.id}, expect=201)
    again = await open_stream(agent, path=f"/api/v1/events?last_event_id={first['id']}")
    assert (await again.until_event("deal.created"))["data"]["deal"]["id"] == deal["id"]
    again.response.close()


async def test_unknown_last_event_id_asks_for_resync(agent: Api) -> None:
    for last in ("deadbeef-5", "garbage", "0-0"):
        stream = await open_stream(agent, {"Last-Event-ID": last})
        event = await stream.next()
        assert event["event"] == "resync" and event["data"] == {}
        stream.response.close()


async def test_events_need_authentication(client: TestClient) -> None:
    response = await client.get("/api/v1/events")
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthorized"


async def test_bell_events_reach_only_their_user(app: web.Application, agent: Api, agent2: Api) -> None:
    one, two = await open_stream(agent), await open_stream(agent2)
    app[BUS].publish("notification.created", {"notification": {"id": 1, "title": "для второго"}},
                     users=[agent2.id])
    app[BUS].publish("notification.created", {"notification": {"id": 2, "title": "для первого"}},
                     users=[agent.id])
    assert (await one.until_event("notification.created"))["data"]["notification"]["id"] == 2
    assert (await two.until_event("notification.created"))["data"]["notification"]["id"] == 1
    one.response.close()
    two.response.close()


async def test_shutdown_is_not_held_by_open_streams(app: web.Application, client: TestClient,
                                                    agent: Api) -> None:
    stream = await open_stream(agent)
    await until(lambda: len(app[STREAMS]) == 1)
    started = time.monotonic()
    # The server alone: client.close() would first close the client's responses, ending the stream
    # from the client's side, and pass even without hub.web.sse.stop_streams.
    await client.server.close()
    # Without stop_streams aiohttp waits out its shutdown_timeout (60 s) for the stream's handler
    # (measured: 121 s); with it, a few ms. 30 s tells them apart on a box however slow.
    assert time.monotonic() - started < 30
    assert not any(s.is_connected() for s in app[STREAMS])
    stream.response.close()


async def test_the_browser_session_opens_the_stream_and_pings_arrive(
        app: web.Application, client: TestClient, agent: Api, monkeypatch: Any) -> None:
    from hub.web import sse
    from tests.integration.test_auth import browser_login

    monkeypatch.setattr(sse, "PING_SECONDS", 0.05)
    await browser_login(client, "agent")
    response = await client.get("/api/v1/events")  # the cookie, no bearer token
    assert response.status == 200
    stream = Stream(response)
    app[BUS].publish("notification.created", {"notification": {"id": 7}}, users=[agent.id])
    assert (await stream.until_event("notification.created"))["data"] == {"notification": {"id": 7}}
    # A later event: by the time it comes, the quiet stream has been pinged.
    asyncio.get_running_loop().call_later(
        0.3, lambda: app[BUS].publish("notification.created", {"notification": {"id": 8}}, users=[agent.id]))
    assert (await stream.until_event("notification.created"))["data"]["notification"]["id"] == 8
    assert ": ping" in stream.comments
    response.close()
