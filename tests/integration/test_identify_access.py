"""``GET /api/v1/identify`` answers by the caller's access (issue 13, finding 4): a person the caller
cannot open is only "a known client (lead), no access" — no name, id or deals."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.conftest import Api

IDENTIFY = "/api/v1/identify"
PHONE = "+79161112233"


async def who(api: Api, **params: str) -> list[dict[str, Any]]:
    matches: list[dict[str, Any]] = (await api.get(IDENTIFY, params=params))["matches"]
    return matches


async def colleagues_client(admin: Api, owner: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    client = await admin.post("/api/v1/clients", {"name": "ООО Секрет", "manager_id": owner.id,
                                                  "phones": [PHONE], "emails": ["boss@secret.ru"]},
                              expect=201)
    deal = await admin.post("/api/v1/deals", {"title": "Тайная поставка", "client_id": client["id"],
                                              "responsible_id": owner.id, "amount": 150000}, expect=201)
    return client, deal


async def test_identify_by_a_phone_of_a_client_the_agent_cannot_open_names_nothing(
        admin: Api, agent: Api, agent2: Api) -> None:
    client, deal = await colleagues_client(admin, agent2)
    await agent.get(f"/api/v1/clients/{client['id']}", expect=404)  # REST: not theirs
    for params in ({"phone": "8 (916) 111-22-33"}, {"email": "boss@secret.ru"}):
        body = await agent.get(IDENTIFY, params=params)
        assert body["matches"] == [{"type": "client", "access": False}]
        text = json.dumps(body, ensure_ascii=False)
        for secret in ("ООО Секрет", "Тайная поставка", "150000", str(deal["id"])):
            assert secret not in text
    # the owner and the administrator see it all
    for api in (agent2, admin):
        [match] = await who(api, phone=PHONE)
        assert match["access"] is True and match["id"] == client["id"] and match["name"] == "ООО Секрет"
        assert [d["id"] for d in match["open_deals"]] == [deal["id"]]


async def test_a_contact_person_of_such_a_client_is_hidden_too(admin: Api, agent: Api, agent2: Api) -> None:
    client, _ = await colleagues_client(admin, agent2)
    await admin.post("/api/v1/contacts", {"client_id": client["id"], "name": "Иван Секретов",
                                          "phones": ["+74950001122"]}, expect=201)
    assert await who(agent, phone="+74950001122") == [{"type": "contact", "access": False}]
    [match] = await who(agent2, phone="+74950001122")
    assert match["name"] == "Иван Секретов" and match["client_id"] == client["id"]


async def test_a_colleagues_lead_is_hidden_an_unsorted_one_is_not(admin: Api, agent: Api,
                                                                agent2: Api) -> None:
    await admin.post("/api/v1/leads", {"name": "Лид Петра", "manager_id": agent2.id,
                                       "phones": ["+79160000001"]}, expect=201)
    unsorted = await admin.post("/api/v1/leads", {"name": "Ничей", "manager_id": None,
                                                  "phones": ["+79160000002"]}, expect=201)
    assert await who(agent, phone="+79160000001") == [{"type": "lead", "access": False}]
    [match] = await who(agent, phone="+79160000002")
    assert match["id"] == unsorted["id"] and match["access"] is True


async def test_on_my_client_only_my_open_deals_are_listed(admin: Api, agent: Api, agent2: Api) -> None:
    client = await admin.post("/api/v1/clients", {"name": "ООО Моё", "manager_id": agent.id,
                                                  "phones": [PHONE]}, expect=201)
    mine = await admin.post("/api/v1/deals", {"title": "Моя", "client_id": client["id"],
                                              "responsible_id": agent.id}, expect=201)
    await admin.post("/api/v1/deals", {"title": "Сделка Петра", "client_id": client["id"],
                                       "responsible_id": agent2.id, "amount": 777}, expect=201)
    [match] = await who(agent, phone=PHONE)
    assert match["id"] == client["id"] and match["access"] is True
    assert [d["id"] for d in match["open_deals"]] == [mine["id"]]  # not the colleague's deal
    # the colleague, responsible for a deal of the client, may open the client: sees only their deal
    [theirs] = await who(agent2, phone=PHONE)
    assert theirs["id"] == client["id"] and [d["title"] for d in theirs["open_deals"]] == ["Сделка Петра"]


async def test_a_closed_deal_of_mine_still_opens_the_client(admin: Api, agent: Api, agent2: Api) -> None:
    client, _ = await colleagues_client(admin, agent2)
    old = await admin.post("/api/v1/deals", {"title": "Прошлая", "client_id": client["id"],
                                             "responsible_id": agent.id}, expect=201)
    pipelines = (await admin.get("/api/v1/pipelines"))["items"]
    won = next(s for s in next(p for p in pipelines if p["is_default"])["stages"] if s["kind"] == "won")
    await admin.post(f"/api/v1/deals/{old['id']}/move", {"stage_id": won["id"]})
    await agent.get(f"/api/v1/clients/{client['id']}")  # REST: theirs through the deal
    [match] = await who(agent, phone=PHONE)
    assert match["id"] == client["id"] and match["open_deals"] == []


async def test_with_agents_see_all_everything_is_shown(admin: Api, agent: Api, agent2: Api) -> None:
    client, deal = await colleagues_client(admin, agent2)
    await admin.patch("/api/v1/settings/access", {"agents_see_all": True})
    [match] = await who(agent, phone=PHONE)
    assert match["id"] == client["id"] and [d["id"] for d in match["open_deals"]] == [deal["id"]]


async def test_colleagues_are_named(agent: Api, agent2: Api, admin: Api) -> None:
    await admin.patch(f"/api/v1/users/{agent2.id}", {"phones": ["+79169990011"]})
    [match] = await who(agent, phone="+79169990011")
    assert match["type"] == "user" and match["id"] == agent2.id and match["access"] is True
