"""POST /api/v1/messages (JSON and multipart), retry, the inbox's conversations (list, filters, paging,
read one, mark read, assign) and moving a message's entry, over HTTP on each test database."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import FormData, web
from sqlalchemy import update

from hub.crm.attachments import stored_path
from hub.crm.messages import MessageIntake
from hub.crm.models import Message
from hub.crm.ports import InboundFile, InboundMessage
from hub.web.keys import CONFIG, DB
from tests.integration.conftest import MAX_BODY, Api

T0 = datetime(2030, 6, 15, 9, 0, tzinfo=UTC)
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
    b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND"
    b"\xaeB`\x82"
)


def intake(app: web.Application) -> MessageIntake:
    return MessageIntake(app[DB], attachments_dir=app[CONFIG].server.attachments_dir)


async def sms_in(
    app: web.Application, sid: str, phone: str, text: str = "Добрый день", at: datetime = T0
) -> dict[str, Any]:
    taken = await intake(app).received(
        InboundMessage(channel="sms", provider_id=sid, address=phone, text=text, sender_name=phone, at=at)
    )
    assert taken is not None
    return taken


async def tg_in(
    app: web.Application,
    message_id: int,
    text: str = "Здравствуйте",
    *,
    user: str = "6038471925",
    at: datetime = T0,
    files: tuple[InboundFile, ...] = (),
) -> dict[str, Any]:
    taken = await intake(app).received(
        InboundMessage(
            channel="telegram",
            provider_id=f"{user}:{message_id}",
            address=user,
            text=text,
            sender_name="Анна Соколова",
            sender_id=user,
            username="anna_spb",
            at=at,
            files=files,
        )
    )
    assert taken is not None
    return taken


async def client_with_deal(api: Api, phone: str = "+7 916 123-45-67", **extra: Any) -> tuple[dict, dict]:
    client = await api.post(
        "/api/v1/clients", {"name": "ООО «Ромашка»", "phones": [phone], **extra}, expect=201
    )
    deal = await api.post(
        "/api/v1/deals", {"title": "Поставка бумаги", "client_id": client["id"]}, expect=201
    )
    return client, deal


async def test_sending_validates_each_field_by_name(agent: Api) -> None:
    client, deal = await client_with_deal(agent)
    errors = (await agent.post("/api/v1/messages", {}, expect=422))["error"]["fields"]
    assert "channel" in errors
    errors = (
        await agent.post(
            "/api/v1/messages", {"channel": "fax", "client_id": client["id"], "text": "x"}, expect=422
        )
    )["error"]["fields"]
    assert set(errors) == {"channel"}
    errors = (
        await agent.post("/api/v1/messages", {"channel": "sms", "client_id": client["id"]}, expect=422)
    )["error"]["fields"]
    assert set(errors) == {"text"}
    errors = (
        await agent.post(
            "/api/v1/messages", {"channel": "sms", "deal_id": deal["id"], "text": "я" * 1601}, expect=422
        )
    )["error"]["fields"]
    assert "1600" in errors["text"]
    errors = (
        await agent.post(
            "/api/v1/messages",
            {"channel": "telegram", "client_id": client["id"], "text": "Привет"},
            expect=422,
        )
    )["error"]["fields"]
    assert "Telegram" in errors["channel"]
    errors = (await agent.post("/api/v1/messages", {"channel": "sms", "text": "Привет"}, expect=422))[
        "error"
    ]["fields"]
    assert "deal_id" in errors
    errors = (
        await agent.post("/api/v1/messages", {"channel": "sms", "client_id": "x", "text": "a"}, expect=422)
    )["error"]["fields"]
    assert set(errors) == {"client_id"}
    errors = (
        await agent.post(
            "/api/v1/messages",
            {"channel": "sms", "client_id": client["id"], "text": "a", "attachments": ["x"]},
            expect=422,
        )
    )["error"]["fields"]
    assert set(errors) == {"attachments"}
    await agent.post("/api/v1/messages", raw="{nope", expect=400)


async def test_a_queued_sms_is_an_outgoing_entry_of_the_deal(agent: Api, agent2: Api) -> None:
    client, deal = await client_with_deal(agent)
    sent = await agent.post(
        "/api/v1/messages",
        {"channel": "sms", "deal_id": deal["id"], "text": "Счёт отправили <b>сегодня</b>"},
        expect=201,
    )
    assert (
        sent["status"] == "queued" and sent["id"] == sent["messages"][0]["id"] and len(sent["messages"]) == 1
    )
    timeline = (await agent.get(f"/api/v1/deals/{deal['id']}/timeline"))["items"]
    entry = next(e for e in timeline if e["kind"] == "sms")
    assert entry["direction"] == "out" and entry["text"] == "Счёт отправили <b>сегодня</b>"
    assert entry["payload"]["status"] == "queued" and entry["payload"]["message_id"] == sent["id"]
    assert entry["payload"]["address"] == "+79161234567"
    # another agent may not see the deal, nor the client: 404, nothing queued
    await agent2.post("/api/v1/messages", {"channel": "sms", "deal_id": deal["id"], "text": "x"}, expect=404)
    await agent2.post(
        "/api/v1/messages", {"channel": "sms", "client_id": client["id"], "text": "x"}, expect=404
    )
    # retry is for failed messages only; another agent's retry is a 404
    errors = (await agent.post(f"/api/v1/messages/{sent['id']}/retry", expect=422))["error"]["fields"]
    assert "status" in errors
    await agent2.post(f"/api/v1/messages/{sent['id']}/retry", expect=404)
    await agent.post("/api/v1/messages/999999/retry", expect=404)


async def test_retry_queues_a_failed_message_again(app: web.Application, agent: Api) -> None:
    _, deal = await client_with_deal(agent)
    sent = await agent.post(
        "/api/v1/messages", {"channel": "sms", "deal_id": deal["id"], "text": "Алло"}, expect=201
    )
    async with app[DB].transaction() as s:
        await s.execute(
            update(Message)
            .where(Message.id == sent["id"])
            .values(status="failed", error="invalid number", error_code="21211")
        )
    again = await agent.post(f"/api/v1/messages/{sent['id']}/retry")
    assert again["status"] == "queued" and again["error"] is None


async def test_long_telegram_text_is_split_and_files_go_as_multipart(
    app: web.Application, agent: Api
) -> None:
    taken = await tg_in(app, 1)
    lead_id = taken["person"]["id"]
    text = ("Слово " * 1000).strip()  # 5,999 characters: two messages
    sent = await agent.post(
        "/api/v1/messages", {"channel": "telegram", "lead_id": lead_id, "text": text}, expect=201
    )
    assert len(sent["messages"]) == 2 and sent["id"] == sent["messages"][0]["id"]
    assert "".join(m["text"] for m in sent["messages"]).replace(" ", "") == text.replace(" ", "")

    form = FormData()
    form.add_field("channel", "telegram")
    form.add_field("lead_id", str(lead_id))
    form.add_field("text", "Наш прайс и схема проезда")
    form.add_field("reply_to", str(taken["entry"]["id"]))
    form.add_field("file", PNG, filename="схема.png", content_type="image/png")
    form.add_field("file", b"%PDF-1.4 price", filename="прайс.pdf", content_type="application/pdf")
    async with agent.client.post("/api/v1/messages", data=form, headers=agent.auth()) as response:
        body = await response.json()
        assert response.status == 201, body
    assert body["reply_to_id"] == taken["id"]
    timeline = (await agent.get(f"/api/v1/leads/{lead_id}/timeline"))["items"]
    entry = next(e for e in timeline if e["payload"].get("message_id") == body["id"])
    assert sorted(a["filename"] for a in entry["attachments"]) == ["прайс.pdf", "схема.png"]
    image = next(a for a in entry["attachments"] if a["filename"] == "схема.png")
    assert image["content_type"] == "image/png" and image["size"] == len(PNG)
    async with agent.client.get(f"/api/v1/attachments/{image['id']}", headers=agent.auth()) as response:
        assert response.status == 200 and await response.read() == PNG

    # files cannot go by SMS; a body above server.max_body_bytes is a 413
    client, _ = await client_with_deal(agent, phone="+7 916 000-00-01")
    form = FormData()
    form.add_field("channel", "sms")
    form.add_field("client_id", str(client["id"]))
    form.add_field("file", b"x" * 10, filename="a.txt", content_type="text/plain")
    async with agent.client.post("/api/v1/messages", data=form, headers=agent.auth()) as response:
        assert response.status == 422 and "attachments" in (await response.json())["error"]["fields"]
    # security finding 10: a refused message's files were written to disk all the same
    stored = stored_path(app[CONFIG].server.attachments_dir, hashlib.sha256(b"x" * 10).hexdigest())
    assert not stored.exists()
    form = FormData()
    form.add_field("channel", "telegram")
    form.add_field("lead_id", str(lead_id))
    form.add_field(
        "file", b"x" * (MAX_BODY + 10), filename="big.bin", content_type="application/octet-stream"
    )
    async with agent.client.post("/api/v1/messages", data=form, headers=agent.auth()) as response:
        assert response.status == 413 and (await response.json())["error"]["code"] == "too_large"


async def test_conversations_newest_first_with_filters_and_paging(
    app: web.Application, admin: Api, agent: Api
) -> None:
    for i in range(3):
        await sms_in(app, f"SM{i}", f"+7916555000{i}", f"СМС {i}", at=T0 + timedelta(minutes=i))
    await tg_in(app, 7, "Телеграм", at=T0 + timedelta(minutes=10))
    page = await admin.get("/api/v1/conversations")
    assert [c["last_text"] for c in page["items"]] == ["Телеграм", "СМС 2", "СМС 1", "СМС 0"]
    first = page["items"][0]
    assert first["channel"] == "telegram" and first["unread"] == 1 and first["name"] == "Анна Соколова"
    assert first["person"]["type"] == "lead" and first["assignee"] is None and page["next_cursor"] is None
    assert [
        c["channel"] for c in (await admin.get("/api/v1/conversations", params={"channel": "sms"}))["items"]
    ] == ["sms"] * 3
    # paging: 2 + 2, nothing twice
    one = await admin.get("/api/v1/conversations", params={"limit": "2"})
    two = await admin.get("/api/v1/conversations", params={"limit": "2", "cursor": one["next_cursor"]})
    assert [c["last_text"] for c in one["items"] + two["items"]] == ["Телеграм", "СМС 2", "СМС 1", "СМС 0"]
    assert two["next_cursor"] is None
    # read: unread → 0, the unread filter leaves it out
    read = await admin.post(f"/api/v1/conversations/{first['id']}/read")
    assert read["unread"] == 0
    assert first["id"] not in [
        c["id"] for c in (await admin.get("/api/v1/conversations", params={"unread": "true"}))["items"]
    ]
    # assign to the agent: assignee=me for them, =none for the admin leaves it out
    assigned = await admin.patch(f"/api/v1/conversations/{first['id']}", {"assignee_id": agent.id})
    assert assigned["assignee"] == {"id": agent.id, "name": "Иван Агентов"}
    mine = await agent.get("/api/v1/conversations", params={"assignee": "me"})
    assert [c["id"] for c in mine["items"]] == [first["id"]]
    assert first["id"] not in [
        c["id"] for c in (await admin.get("/api/v1/conversations", params={"assignee": "none"}))["items"]
    ]
    by_id = await admin.get("/api/v1/conversations", params={"assignee": str(agent.id)})
    assert [c["id"] for c in by_id["items"]] == [first["id"]]
    errors = (await admin.patch(f"/api/v1/conversations/{first['id']}", {"assignee_id": 99999}, expect=422))[
        "error"
    ]["fields"]
    assert set(errors) == {"assignee_id"}
    assert (
        "assignee_id"
        in (await admin.patch(f"/api/v1/conversations/{first['id']}", {}, expect=422))["error"]["fields"]
    )
    unassigned = await admin.patch(f"/api/v1/conversations/{first['id']}", {"assignee_id": None})
    assert unassigned["assignee"] is None
    # junk filters are refused by name
    for params, field in (
        ({"channel": "fax"}, "channel"),
        ({"assignee": "x"}, "assignee"),
        ({"cursor": "nope"}, "cursor"),
        ({"unread": "maybe"}, "unread"),
        ({"limit": "0"}, "limit"),
    ):
        errors = (await admin.get("/api/v1/conversations", params=params, expect=422))["error"]["fields"]
        assert field in errors, params


async def test_an_agent_sees_only_conversations_of_people_they_may_see(
    app: web.Application, admin: Api, agent: Api, agent2: Api
) -> None:
    theirs, _ = await client_with_deal(agent2, phone="+7 916 700-00-01")
    await sms_in(app, "SMtheirs", "+79167000001", "Это клиент Петра")
    unknown = await sms_in(app, "SMnew", "+79167000002", "Кто-то новый")  # a lead nobody manages yet
    listed = {c["last_text"]: c for c in (await agent.get("/api/v1/conversations"))["items"]}
    assert set(listed) == {"Кто-то новый"}
    conversation_id = next(
        c["id"] for c in (await admin.get("/api/v1/conversations"))["items"] if c["client_id"] == theirs["id"]
    )
    for call in (
        agent.get(f"/api/v1/conversations/{conversation_id}", expect=404),
        agent.post(f"/api/v1/conversations/{conversation_id}/read", expect=404),
        agent.patch(f"/api/v1/conversations/{conversation_id}", {"assignee_id": agent.id}, expect=404),
    ):
        await call
    assert {c["last_text"] for c in (await agent2.get("/api/v1/conversations"))["items"]} == {
        "Это клиент Петра",
        "Кто-то новый",
    }
    # assigned to the agent, it is theirs to see
    await admin.patch(f"/api/v1/conversations/{conversation_id}", {"assignee_id": agent.id})
    seen = await agent.get(f"/api/v1/conversations/{conversation_id}")
    assert seen["messages"][0]["text"] == "Это клиент Петра"
    await agent.get(f"/api/v1/conversations/{unknown['conversation_id']}")
    await agent.get("/api/v1/conversations/0", expect=404)


async def test_a_conversation_reads_newest_last_with_a_cursor_for_older(
    app: web.Application, admin: Api
) -> None:
    for i in range(5):
        await tg_in(app, i + 1, f"Сообщение {i}", at=T0 + timedelta(minutes=i))
    conversation = (await admin.get("/api/v1/conversations"))["items"][0]
    await admin.post(
        "/api/v1/messages",
        {"channel": "telegram", "lead_id": conversation["lead_id"], "text": "Ответ"},
        expect=201,
    )
    full = await admin.get(f"/api/v1/conversations/{conversation['id']}")
    assert [m["text"] for m in full["messages"]] == [*(f"Сообщение {i}" for i in range(5)), "Ответ"]
    assert full["messages"][-1]["direction"] == "out" and full["messages"][-1]["status"] == "queued"
    assert full["messages"][-1]["author"]["name"] == "Анна Админова"
    assert full["messages"][0]["entry"]["kind"] == "telegram" and full["unread"] == 0  # replying read it
    newest = await admin.get(f"/api/v1/conversations/{conversation['id']}", params={"limit": "4"})
    assert [m["text"] for m in newest["messages"]] == ["Сообщение 2", "Сообщение 3", "Сообщение 4", "Ответ"]
    older = await admin.get(
        f"/api/v1/conversations/{conversation['id']}",
        params={"limit": "4", "cursor": newest["messages_cursor"]},
    )
    assert [m["text"] for m in older["messages"]] == ["Сообщение 0", "Сообщение 1"]
    assert older["messages_cursor"] is None


async def test_moving_a_message_to_another_open_deal_of_the_same_person(
    app: web.Application, agent: Api, agent2: Api, admin: Api
) -> None:
    client, first = await client_with_deal(agent, phone="+7 916 800-00-01")
    second = await agent.post(
        "/api/v1/deals", {"title": "Вторая поставка", "client_id": client["id"]}, expect=201
    )
    taken = await sms_in(app, "SMmove", "+79168000001", "Куда это?")
    entry = taken["entry"]
    assert entry["deal_id"] == second["id"]  # the most recently active open deal
    moved = await agent.post(f"/api/v1/timeline/{entry['id']}/move", {"deal_id": first["id"]})
    assert moved["deal_id"] == first["id"] and moved["client_id"] == client["id"]
    assert [
        e["id"]
        for e in (await agent.get(f"/api/v1/deals/{first['id']}/timeline"))["items"]
        if e["kind"] == "sms"
    ] == [entry["id"]]
    assert not [
        e for e in (await agent.get(f"/api/v1/deals/{second['id']}/timeline"))["items"] if e["kind"] == "sms"
    ]
    # another person's deal, a closed deal, a note, junk, someone who may not see it
    _, other = await client_with_deal(agent, phone="+7 916 800-00-02")
    errors = (await agent.post(f"/api/v1/timeline/{entry['id']}/move", {"deal_id": other["id"]}, expect=422))[
        "error"
    ]["fields"]
    assert "another person" in errors["deal_id"]
    pipeline = await agent.get(f"/api/v1/pipelines/{second['pipeline_id']}")
    won = next(s for s in pipeline["stages"] if s["kind"] == "won")
    await agent.post(f"/api/v1/deals/{second['id']}/move", {"stage_id": won["id"]})
    errors = (
        await agent.post(f"/api/v1/timeline/{entry['id']}/move", {"deal_id": second["id"]}, expect=422)
    )["error"]["fields"]
    assert errors["deal_id"] == "is closed"
    note = await agent.post(f"/api/v1/deals/{first['id']}/notes", {"text": "Заметка"}, expect=201)
    errors = (await agent.post(f"/api/v1/timeline/{note['id']}/move", {"deal_id": first["id"]}, expect=422))[
        "error"
    ]["fields"]
    assert "entry" in errors
    assert (
        "deal_id"
        in (await agent.post(f"/api/v1/timeline/{entry['id']}/move", {"deal_id": "x"}, expect=422))["error"][
            "fields"
        ]
    )
    await agent2.post(f"/api/v1/timeline/{entry['id']}/move", {"deal_id": first["id"]}, expect=404)
    await admin.post(f"/api/v1/timeline/{entry['id']}/move", {"deal_id": first["id"]})  # already there


async def test_the_inbox_page_escapes_text_and_keeps_to_what_the_agent_may_see(
    app: web.Application, client: Any, admin: Api, agent: Api, agent2: Api
) -> None:
    from tests.integration.test_web_pages import logged_in, page

    theirs, _ = await client_with_deal(agent2, phone="+7 916 700-00-09")
    await sms_in(app, "SMhostile", "+79167000009", "<script>alert(1)</script> & <b>жирный</b>")
    taken = await tg_in(app, 3, "Привет из Telegram")
    await logged_in(client, agent)
    html = await page(client, "/inbox")
    assert "Входящие" in html and "Привет из Telegram" in html and "alert(1)" not in html
    assert len(re.findall(r'<li class="conv[ "]', html)) == 1 and '<span class="conv-unread"' in html
    panel = await page(client, f"/inbox/c/{taken['conversation_id']}")
    assert f'data-conversation-id="{taken["conversation_id"]}"' in panel
    assert (
        'name="channel" value="telegram"' in panel
        and f'name="lead_id" value="{taken["person"]["id"]}"' in panel
    )
    conversation_id = next(
        c["id"] for c in (await admin.get("/api/v1/conversations"))["items"] if c["client_id"] == theirs["id"]
    )
    await page(client, f"/inbox/c/{conversation_id}", 404)
    # the manager sees it, its text escaped; assigns it to the agent with the panel's form
    client.session.cookie_jar.clear()
    csrf = await logged_in(client, admin)
    html = await page(client, f"/inbox?c={conversation_id}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;жирный&lt;/b&gt;" in html
    async with client.post(
        f"/inbox/c/{conversation_id}/assign",
        data={"assignee_id": str(agent.id), "csrf_token": csrf},
        headers={"HX-Request": "true"},
    ) as response:
        assert response.status == 200 and "Иван Агентов" in await response.text()
    assert (await agent.get(f"/api/v1/conversations/{conversation_id}"))["assignee"]["id"] == agent.id


async def test_a_conversation_of_nobody_becomes_a_lead(app: web.Application, agent: Api, agent2: Api,
                                                       admin: Api) -> None:
    """Letters kept out of the timeline (a noreply sender, bulk mail): listed with their text; "create a
    lead" makes the agent's lead with the address, links the conversation and puts the letters on the
    lead's timeline; a conversation with a person already is refused."""
    taken = []
    for n, text in enumerate(("Новые цены с 1 декабря.", "Скидка 7% на фурнитуру до пятницы.")):
        taken.append(await intake(app).received(InboundMessage(
            channel="email", provider_id=f"<news-{n}@okna-opt.example.ru>",
            address="noreply@okna-opt.example.ru",
            sender_name="Оконный опт", subject=f"Рассылка №{n + 1}", text=text, lead_allowed=False,
            at=T0 + timedelta(minutes=n))))
    conversation_id = taken[0]["conversation_id"]
    assert all(t["entry"] is None and t["conversation_id"] == conversation_id for t in taken)
    got = await agent.get(f"/api/v1/conversations/{conversation_id}")
    assert got["person"] is None and got["subject"] == "Рассылка №2" and got["reply_to"] is None
    assert [m["text"] for m in got["messages"]] == [
        "Новые цены с 1 декабря.", "Скидка 7% на фурнитуру до пятницы."]
    assert all(m["entry"] is None for m in got["messages"])

    made = await agent.post(f"/api/v1/conversations/{conversation_id}/lead", expect=201)
    lead = made["lead"]
    assert lead["name"] == "Оконный опт" and lead["source"] == "e-mail" and lead["manager_id"] == agent.id
    assert lead["emails"] == ["noreply@okna-opt.example.ru"]
    assert made["conversation"]["lead_id"] == lead["id"] and made["conversation"]["person"]["type"] == "lead"
    timeline = (await agent.get(f"/api/v1/leads/{lead['id']}/timeline"))["items"]
    assert [(e["kind"], e["direction"], e["payload"]["subject"]) for e in timeline] == [
        ("email", "in", "Рассылка №2"), ("email", "in", "Рассылка №1")]
    got = await agent.get(f"/api/v1/conversations/{conversation_id}")
    assert [m["entry_id"] for m in got["messages"]] == [e["id"] for e in reversed(timeline)]
    assert got["reply_to"] == {"entry_id": timeline[0]["id"], "subject": "Рассылка №2"}
    # a reply now answers the latest letter, "Re: …"
    sent = await agent.post("/api/v1/messages", {"channel": "email", "lead_id": lead["id"], "text": "Спасибо",
                                                 "reply_to": timeline[0]["id"]}, expect=201)
    assert sent["subject"] == "Re: Рассылка №2"

    # once linked, no second lead; the lead's conversation is the agent's, not agent2's
    refused = await agent.post(f"/api/v1/conversations/{conversation_id}/lead", expect=422)
    assert "conversation" in refused["error"]["fields"]
    await agent2.post(f"/api/v1/conversations/{conversation_id}/lead", expect=404)
    await agent.post("/api/v1/conversations/999999/lead", expect=404)
    # an SMS from a short code (an address a lead cannot keep): the lead without it
    short = await intake(app).received(InboundMessage(channel="sms", provider_id="SMshort", address="900",
                                                      text="Код подтверждения 1234", lead_allowed=False))
    assert short is not None and short["entry"] is None
    other = await admin.post(f"/api/v1/conversations/{short['conversation_id']}/lead", expect=201)
    assert other["lead"]["phones"] == [] and other["lead"]["name"] == "900"
    spec = await agent.get("/api/v1/openapi.json")
    assert "post" in spec["paths"]["/api/v1/conversations/{id}/lead"]


async def test_a_subject_with_a_line_break_is_refused(agent: Api) -> None:
    """Security finding 11: CR/LF in a subject was accepted, and the letter then ended «unknown /
    may have been delivered» though it never left."""
    client, _ = await client_with_deal(agent, emails=["info@romashka.ru"])
    for subject in ("Счёт\r\nBcc: all@example.ru", "Счёт\nи акт"):
        body = {"channel": "email", "client_id": client["id"], "subject": subject, "text": "Добрый день"}
        refused = await agent.post("/api/v1/messages", body, expect=422)
        assert refused["error"]["fields"]["subject"] == "must be one line"
    await agent.post("/api/v1/messages", {"channel": "email", "client_id": client["id"],
                                          "subject": "Счёт и акт", "text": "Добрый день"}, expect=201)
