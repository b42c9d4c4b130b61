"""The people part of the core on SQLite and PostgreSQL: clients, contacts, leads, users, identify."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, select

from hub.crm import clients, contact_points, contacts, extensions, identify, leads, users
from hub.crm.errors import Conflict, Forbidden, NotFound, ValidationError
from hub.crm.events import take_pending
from hub.crm.models import (
    ContactPoint,
    CustomField,
    Deal,
    Lead,
    Pipeline,
    Stage,
    Task,
    TimelineEntry,
    User,
)
from hub.db import Database


async def _user(db: Database, login: str, role: str) -> User:
    async with db.transaction() as s:
        user = User(login=login, name=login.title(), role=role)
        s.add(user)
        await s.flush()
    return user


@pytest.fixture
async def people(database: Database) -> dict[str, User]:
    return {
        "admin": await _user(database, "admin", "admin"),
        "manager": await _user(database, "manager", "manager"),
        "agent": await _user(database, "agent", "agent"),
        "other": await _user(database, "other", "agent"),
    }


async def _stages(s: Any) -> dict[str, Stage]:
    pipeline = (await s.scalars(select(Pipeline).where(Pipeline.is_default))).one()
    stages = (await s.scalars(select(Stage).where(Stage.pipeline_id == pipeline.id)
                              .order_by(Stage.position))).all()
    return {"active": stages[0], "won": next(x for x in stages if x.kind == "won")}


async def _deal(s: Any, title: str, stage: Stage, amount_minor: int = 0, **owner: Any) -> Deal:
    deal = Deal(title=title, pipeline_id=stage.pipeline_id, stage_id=stage.id, amount_minor=amount_minor,
                **owner)
    s.add(deal)
    await s.flush()
    return deal


# --- identify ---------------------------------------------------------------------------------------

async def test_every_phone_format_identifies_the_same_client(database: Database,
                                                             people: dict[str, User]) -> None:
    async with database.transaction() as s:
        client = await clients.create_client(s, people["manager"], {
            "name": "ООО «Ромашка»", "phones": ["8 (916) 123-45-67"], "inn": "7707083893"})
        st = await _stages(s)
        open_deal = await _deal(s, "Поставка", st["active"], 15_000_050, client_id=client["id"])
        await _deal(s, "Закрыта", st["won"], 100, client_id=client["id"])
    assert client["phones"] == ["+79161234567"]
    async with database.reading() as s:
        for raw in ("8 (916) 123-45-67", "+7 916 123 45 67", "79161234567", "9161234567",
                    "0079161234567", "+7-916-123-45-67"):
            matches = await identify.identify(s, phone=raw)
            assert matches == [{"type": "client", "id": client["id"], "name": "ООО «Ромашка»",
                                "client_id": client["id"],
                                "open_deals": [{"id": open_deal.id, "title": "Поставка",
                                                "stage": st["active"].name, "amount": 150000.5}]}], raw
        assert await identify.identify(s, phone="+7 916 123 45 68") == []
        assert await identify.identify(s, phone="anonymous") == []
        assert await identify.identify(s) == []


async def test_tail_fallback_matches_the_last_ten_digits(database: Database,
                                                         people: dict[str, User]) -> None:
    async with database.transaction() as s:
        lead = await leads.create_lead(s, None, {"name": "Звонок", "phones": ["+7 495 123-45-67"]})
    async with database.reading() as s:
        # "00" is no international prefix in Russia, so this caller id is not a valid number
        matches = await identify.identify(s, phone="00 7 495 123 45 67")
        assert [(m["type"], m["id"]) for m in matches] == [("lead", lead["id"])]
        row = (await s.scalars(select(ContactPoint).where(ContactPoint.lead_id == lead["id"]))).one()
        assert (row.kind, row.value, row.tail) == ("phone", "+74951234567", "4951234567")


async def test_email_and_telegram(database: Database, people: dict[str, User]) -> None:
    async with database.transaction() as s:
        client = await clients.create_client(s, people["manager"], {
            "name": "Иванов", "kind": "person", "emails": ["Ivan.Petrov@Example.RU"],
            "telegram": ["@Ivan_Petrov", 123456789]})
        user = await users.create_user(s, people["admin"], {
            "login": "masha", "password": "Mariya-secret-42", "name": "Маша", "telegram": ["555"]})
    assert client["emails"] == ["ivan.petrov@example.ru"]
    assert client["telegram"] == ["@ivan_petrov", "123456789"]
    async with database.reading() as s:
        for kw in ({"email": "IVAN.PETROV@example.ru"}, {"telegram": "ivan_petrov"},
                   {"telegram": "@IVAN_PETROV"}, {"telegram": 123456789}, {"telegram": "123456789"}):
            assert [m["id"] for m in await identify.identify(s, **kw)] == [client["id"]], kw
        assert await identify.identify(s, email="other@example.ru") == []
        assert [(m["type"], m["id"]) for m in await identify.identify(s, telegram="555")] == \
            [("user", user["id"])]


async def test_contact_person_shows_its_clients_open_deals(database: Database,
                                                           people: dict[str, User]) -> None:
    async with database.transaction() as s:
        client = await clients.create_client(s, people["manager"], {"name": "Альфа",
                                                                     "phones": ["+74951112233"]})
        contact = await contacts.create_contact(s, people["manager"], {
            "client_id": client["id"], "name": "Пётр", "position": "Директор", "phones": ["89161112233"]})
        st = await _stages(s)
        deal = await _deal(s, "Сделка", st["active"], 100_00, client_id=client["id"])
    async with database.reading() as s:
        matches = await identify.identify(s, phone="+7 916 111 22 33")
    assert matches == [{"type": "contact", "id": contact["id"], "name": "Пётр", "client_id": client["id"],
                        "open_deals": [{"id": deal.id, "title": "Сделка", "stage": st["active"].name,
                                        "amount": 100}]}]


async def test_identify_uses_at_most_two_queries(database: Database, people: dict[str, User]) -> None:
    async with database.transaction() as s:
        client = await clients.create_client(s, people["manager"], {"name": "A", "phones": ["9161234567"]})
        await contacts.create_contact(s, people["manager"], {"client_id": client["id"], "name": "B",
                                                             "phones": ["9161234567"]})
        await leads.create_lead(s, None, {"name": "C", "phones": ["9161234567"]})
        st = await _stages(s)
        for i in range(3):
            await _deal(s, f"D{i}", st["active"], client_id=client["id"])
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    async with database.reading() as s:
        await identify.identify(s, phone="1")  # warm up: connection and compiled statement
        event.listen(database.engine.sync_engine, "before_cursor_execute", count)
        try:
            matches = await identify.identify(s, phone="+79161234567")
        finally:
            event.remove(database.engine.sync_engine, "before_cursor_execute", count)
    assert [m["type"] for m in matches] == ["client", "contact", "lead"]
    assert len(matches[0]["open_deals"]) == 3 and len(matches[1]["open_deals"]) == 3
    assert len(statements) <= 2


# --- clients ----------------------------------------------------------------------------------------

async def test_client_fields_tags_custom_and_events(database: Database, people: dict[str, User]) -> None:
    async with database.transaction() as s:
        s.add(CustomField(entity="client", key="segment", label="Сегмент", type="choice",
                          choices=["A", "B"]))
        s.add(CustomField(entity="client", key="since", label="С", type="date"))
        await s.flush()
        created = await clients.create_client(s, people["manager"], {
            "name": "ПАО Сбербанк", "kind": "company", "inn": "7707083893", "kpp": "773601001",
            "okpo": "00032537", "manager_id": people["agent"].id, "tags": ["VIP", "банк", "VIP"],
            "custom": {"segment": "A", "since": "2020-01-31"}, "region": "Москва"})
        pending = take_pending(s)
    assert [e.name for e in pending] == ["client.created"]
    assert pending[0].scope == {"manager_id": people["agent"].id}
    assert created["manager"] == {"id": people["agent"].id, "name": "Agent"}
    assert created["tags"] == ["VIP", "банк"]
    assert created["custom"] == {"segment": "A", "since": "2020-01-31"}
    assert created["created_at"].endswith("Z")
    async with database.transaction() as s:
        updated = await clients.update_client(s, people["agent"], created["id"], {
            "tags": ["новый"], "custom": {"segment": None}, "comment": "ok", "phones": ["+7 916 000-00-01"]})
    assert updated["tags"] == ["новый"] and updated["custom"] == {"since": "2020-01-31"}
    assert updated["phones"] == ["+79160000001"] and updated["inn"] == "7707083893"
    async with database.transaction() as s:
        with pytest.raises(ValidationError) as err:
            await clients.update_client(s, people["manager"], created["id"], {
                "inn": "7707083894", "kpp": "77360100", "okpo": "00032538",
                "custom": {"nope": 1, "since": "x"},
                "manager_id": 999999, "kind": "alien", "phones": ["12"], "emails": ["not-an-email"],
                "telegram": ["@@"]})
    assert err.value.fields == {
        "inn": "checksum does not match",
        "kpp": "must be 9 characters: 4 digits, 2 digits or capital letters, 3 digits",
        "okpo": "checksum does not match", "custom": "unknown field 'nope'",
        "custom.since": "must be a date (YYYY-MM-DD)", "manager_id": "no such user",
        "kind": "must be one of: company, person", "phones": "'12' is not a valid phone number",
        "emails": "'not-an-email' is not a valid e-mail address",
        "telegram": "'@@' is not a Telegram id or @username"}
    async with database.transaction() as s:
        with pytest.raises(ValidationError) as err:
            await clients.create_client(s, people["manager"], {"name": "X", "inn": "500100732259",
                                                                "phones": ["+7 916 123 45 67", "abc"]})
    assert set(err.value.fields) == {"phones"}


async def test_agent_sees_only_own_clients_and_cannot_delete(database: Database,
                                                             people: dict[str, User]) -> None:
    async with database.transaction() as s:
        mine = await clients.create_client(s, people["agent"], {"name": "Мой"})
        theirs = await clients.create_client(s, people["other"], {"name": "Чужой"})
    assert mine["manager_id"] == people["agent"].id
    async with database.transaction() as s:
        with pytest.raises(NotFound):
            await clients.get_client(s, people["agent"], theirs["id"])
        with pytest.raises(NotFound):
            await clients.update_client(s, people["agent"], theirs["id"], {"name": "x"})
        with pytest.raises(NotFound):
            await clients.delete_client(s, people["agent"], theirs["id"])
        with pytest.raises(Forbidden):
            await clients.delete_client(s, people["agent"], mine["id"])
        with pytest.raises(NotFound):
            await clients.get_client(s, people["agent"], 10**30)
        page = await clients.list_clients(s, people["agent"])
        assert [c["id"] for c in page.items] == [mine["id"]]
        # a deal the agent is responsible for opens the client to them
        st = await _stages(s)
        await _deal(s, "Моя сделка", st["active"], client_id=theirs["id"], responsible_id=people["agent"].id)
        assert (await clients.get_client(s, people["agent"], theirs["id"]))["name"] == "Чужой"
    async with database.transaction() as s:
        await clients.delete_client(s, people["manager"], mine["id"])
    async with database.transaction() as s:
        with pytest.raises(NotFound):
            await clients.get_client(s, people["manager"], mine["id"])


async def test_list_clients_search_filters_and_paging(database: Database, people: dict[str, User]) -> None:
    m = people["manager"]
    async with database.transaction() as s:
        a = await clients.create_client(s, m, {"name": "ООО Ромашка", "inn": "7707083893", "tags": ["VIP"],
                                               "region": "Москва"})
        b = await clients.create_client(s, m, {"name": "ромашка и партнёры", "emails": ["Info@Romashka.ru"]})
        c = await clients.create_client(s, m, {"name": "Vasilek Ltd", "manager_id": people["agent"].id})
        await contacts.create_contact(s, m, {"client_id": c["id"], "name": "Иван",
                                             "phones": ["8 916 555 44 33"]})

    async def ids(**kw: Any) -> list[int]:
        async with database.reading() as s:
            return [x["id"] for x in (await clients.list_clients(s, m, **kw)).items]

    assert await ids() == [c["id"], b["id"], a["id"]]
    assert await ids(q="ромашка") == [b["id"], a["id"]]
    assert await ids(q="РОМАШКА") == [b["id"], a["id"]]
    assert await ids(q="Ромашка") == [b["id"], a["id"]]
    assert await ids(q="vasilek") == [c["id"]]
    assert await ids(q="+7 (916) 555-44-33") == [c["id"]]  # via its contact person
    assert await ids(q="info@romashka.RU") == [b["id"]]
    assert await ids(q="770708") == [a["id"]]
    assert await ids(q="100%_") == []
    assert await ids(q="'; DROP TABLE clients; --") == []
    assert await ids(tag="VIP") == [a["id"]]
    assert await ids(manager_id=people["agent"].id) == [c["id"]]
    assert await ids(region_name="Москва") == [a["id"]]
    async with database.reading() as s:
        first = await clients.list_clients(s, m, limit=2)
        assert [x["id"] for x in first.items] == [c["id"], b["id"]] and first.next_cursor
        second = await clients.list_clients(s, m, limit=2, cursor=first.next_cursor)
        assert [x["id"] for x in second.items] == [a["id"]] and second.next_cursor is None
        with pytest.raises(ValidationError):
            await clients.list_clients(s, m, cursor="garbage!")


HOSTILE = ["Robert'); DROP TABLE clients;--", "<script>alert(1)</script>", "\"quotes\" & 'apostrophes'",
           "😀👨‍👩‍👧 emoji", "Ω≈ç√ 漢字 ملف", "\\backslash\\ %percent% _underscore_"]


@pytest.mark.parametrize("text", HOSTILE)
async def test_hostile_strings_are_stored_faithfully(database: Database, people: dict[str, User],
                                                     text: str) -> None:
    async with database.transaction() as s:
        client = await clients.create_client(s, people["manager"], {
            "name": text, "full_name": text * 10, "comment": text * 100, "tags": [text]})
        lead = await leads.create_lead(s, people["manager"], {"name": text, "source": text[:100],
                                                              "utm": {"utm_source": text}})
    async with database.reading() as s:
        got = await clients.get_client(s, people["manager"], client["id"])
        assert (got["name"], got["full_name"], got["comment"], got["tags"]) == \
            (text, text * 10, text * 100, [text])
        assert (await leads.get_lead(s, people["manager"], lead["id"]))["utm"] == {"utm_source": text}
        found = await clients.list_clients(s, people["manager"], q=text)
        assert [x["id"] for x in found.items] == [client["id"]]


async def test_hostile_strings_are_rejected_cleanly(database: Database, people: dict[str, User]) -> None:
    m = people["manager"]
    bad_bodies = [
        ({"name": "x" * 10_000}, "name"), ({"name": "a\x00b"}, "name"), ({"name": ""}, "name"),
        ({"name": 5}, "name"), ({"name": "ok", "region": "r" * 201}, "region"),
        ({"name": "ok", "comment": "\x00"}, "comment"), ({"name": "ok", "tags": ["t" * 101]}, "tags"),
        ({"name": "ok", "emails": ["a\x00@b.ru"]}, "emails"),
        ({"name": "ok", "phones": ["9" * 10_000]}, "phones"),
        ({"name": "ok", "telegram": ["x" * 10_000]}, "telegram"),
        ({"name": "ok", "inn": "1" * 10_000}, "inn"),
    ]
    for body, field in bad_bodies:
        async with database.transaction() as s:
            with pytest.raises(ValidationError) as err:
                await clients.create_client(s, m, body)
        assert field in err.value.fields, body
    async with database.transaction() as s:
        with pytest.raises(ValidationError):
            await clients.create_client(s, m, ["not", "an", "object"])
        with pytest.raises(ValidationError):
            await leads.create_lead(s, m, {"name": "x", "utm": {"a": "\x00"}})
        with pytest.raises(ValidationError):
            await contacts.create_contact(s, m, {"client_id": 10**20, "name": "x"})
        page = await clients.list_clients(s, m, q="a\x00b")
        assert page.items == []


# --- leads ------------------------------------------------------------------------------------------

async def test_lead_conversion_moves_everything(database: Database, people: dict[str, User]) -> None:
    async with database.transaction() as s:
        lead = await leads.create_lead(s, None, {"name": "Сергей", "phones": ["+7 916 777-66-55"],
                                                 "emails": ["s@example.ru"], "source": "telegram"})
        assert lead["unsorted"] is True and lead["manager_id"] is None
        st = await _stages(s)
        deal = await _deal(s, "Заявка", st["active"], 5000_00, lead_id=lead["id"])
        entry = TimelineEntry(kind="note", text="первый звонок", lead_id=lead["id"], deal_id=deal.id)
        task = Task(subject="Перезвонить", lead_id=lead["id"])
        s.add_all([entry, task])
        await s.flush()
    async with database.reading() as s:
        assert [m["type"] for m in await identify.identify(s, phone="89167776655")] == ["lead"]
    async with database.transaction() as s:
        result = await leads.convert_lead(s, people["agent"], lead["id"],
                                          {"contact_name": "Сергей Петрович", "inn": "500100732259"})
        names = [e.name for e in take_pending(s)]
    assert names == ["client.created", "lead.updated"]
    client, contact = result["client"], result["contact"]
    assert client["kind"] == "person" and client["name"] == "Сергей" and client["inn"] == "500100732259"
    assert client["manager_id"] == people["agent"].id
    assert client["phones"] == ["+79167776655"] and client["emails"] == ["s@example.ru"]
    assert contact["name"] == "Сергей Петрович" and contact["client_id"] == client["id"]
    async with database.reading() as s:
        converted = await s.get(Lead, lead["id"])
        assert converted.converted_client_id == client["id"] and converted.converted_at is not None
        assert converted.unsorted is False
        moved = await s.get(Deal, deal.id)
        assert (moved.client_id, moved.lead_id, moved.contact_id) == (client["id"], lead["id"], contact["id"])
        assert (await s.get(TimelineEntry, entry.id)).client_id == client["id"]
        assert (await s.get(Task, task.id)).client_id == client["id"]
        matches = await identify.identify(s, phone="+79167776655")
        assert [(m["type"], m["id"]) for m in matches] == [("client", client["id"])]
        assert [d["id"] for d in matches[0]["open_deals"]] == [deal.id]
        assert (await leads.get_lead(s, people["agent"], lead["id"]))["phones"] == []
    async with database.transaction() as s:
        with pytest.raises(Conflict):
            await leads.convert_lead(s, people["agent"], lead["id"], {})


async def test_conversion_validates_before_changing_anything(database: Database,
                                                             people: dict[str, User]) -> None:
    async with database.transaction() as s:
        lead = await leads.create_lead(s, people["agent"], {"name": "Лид"})
    with pytest.raises(ValidationError):
        async with database.transaction() as s:
            await leads.convert_lead(s, people["agent"], lead["id"], {"inn": "123", "kind": "company"})
    async with database.transaction() as s:
        result = await leads.convert_lead(s, people["agent"], lead["id"], None)
    assert result["contact"] is None and result["client"]["kind"] == "person"


async def test_leads_access_list_and_taking(database: Database, people: dict[str, User]) -> None:
    async with database.transaction() as s:
        inbox = await leads.create_lead(s, None, {"name": "Входящий"})
        theirs = await leads.create_lead(s, people["other"], {"name": "Чужой"})
        mine = await leads.create_lead(s, people["agent"], {"name": "Мой"})
    async with database.transaction() as s:
        ids = [x["id"] for x in (await leads.list_leads(s, people["agent"])).items]
        assert ids == [mine["id"], inbox["id"]]
        assert [x["id"] for x in (await leads.list_leads(s, people["agent"], unsorted=True)).items] == \
            [inbox["id"]]
        with pytest.raises(NotFound):
            await leads.get_lead(s, people["agent"], theirs["id"])
        taken = await leads.update_lead(s, people["agent"], inbox["id"], {"manager_id": people["agent"].id})
        assert taken["unsorted"] is False and taken["manager"]["id"] == people["agent"].id
        with pytest.raises(Forbidden):
            await leads.delete_lead(s, people["agent"], mine["id"])
        await leads.delete_lead(s, people["manager"], mine["id"])
        assert [x["name"] for x in (await leads.list_leads(s, people["manager"], q="ВХОД")).items] == \
            ["Входящий"]


# --- contacts ---------------------------------------------------------------------------------------

async def test_contacts_follow_client_access(database: Database, people: dict[str, User]) -> None:
    async with database.transaction() as s:
        theirs = await clients.create_client(s, people["other"], {"name": "Чужой"})
        contact = await contacts.create_contact(s, people["other"], {
            "client_id": theirs["id"], "name": "Анна", "emails": ["anna@x.ru"]})
    async with database.transaction() as s:
        with pytest.raises(NotFound):
            await contacts.get_contact(s, people["agent"], contact["id"])
        with pytest.raises(ValidationError) as err:
            await contacts.create_contact(s, people["agent"], {"client_id": theirs["id"], "name": "x"})
        assert err.value.fields == {"client_id": "no such client"}
        assert (await contacts.list_contacts(s, people["agent"])).items == []
        updated = await contacts.update_contact(s, people["other"], contact["id"],
                                                {"position": "Бухгалтер", "emails": []})
        assert updated["position"] == "Бухгалтер" and updated["emails"] == []
        listed = await contacts.list_contacts(s, people["manager"], client_id=theirs["id"], q="АННА")
        assert [x["id"] for x in listed.items] == [contact["id"]]
        await contacts.delete_contact(s, people["other"], contact["id"])
        with pytest.raises(NotFound):
            await contacts.get_contact(s, people["manager"], contact["id"])


# --- users ------------------------------------------------------------------------------------------

async def test_users_passwords_extensions_and_roles(database: Database, people: dict[str, User]) -> None:
    async with database.transaction() as s:
        created = await users.create_or_update_user(s, "operator", "Pa55-word-2026", "agent", name="Оператор",
                                                    extensions=["101", "102"])
        assert "password_hash" not in created and created["extensions"] == ["101", "102"]
        again = await users.create_or_update_user(s, "operator", "New-pass-2026", "manager",
                                                  extensions=["103"])
        assert again["id"] == created["id"] and again["role"] == "manager" and again["extensions"] == ["103"]
        assert again["name"] == "Оператор"
        assert await users.authenticate(s, "operator", "Pa55-word-2026") is None
        assert (await users.authenticate(s, "operator", "New-pass-2026")).id == created["id"]
        assert await users.authenticate(s, "nobody", "x") is None
        assert await extensions.extensions_of(s, created["id"]) == ["103"]
        assert "103" in await extensions.all_extensions(s)
        with pytest.raises(Conflict):
            await users.create_user(s, people["admin"],
                                    {"login": "x2", "password": "Long-enough-42", "extensions": ["103"]})
        with pytest.raises(Conflict):
            await users.create_user(s, people["admin"], {"login": "operator", "password": "Long-enough-42"})
        with pytest.raises(Forbidden):
            await users.create_user(s, people["manager"], {"login": "x3", "password": "Long-enough-42"})
        with pytest.raises(Forbidden):
            await users.update_user(s, people["agent"], people["agent"].id, {"role": "admin"})
        mine = await users.update_user(s, people["agent"], people["agent"].id, {"language": "en"})
        assert mine["language"] == "en"
        listed = await users.list_users(s, people["agent"])
        assert created["id"] in [u["id"] for u in listed.items]
        assert all("password_hash" not in u for u in listed.items)
        await users.delete_user(s, people["admin"], created["id"])
        assert await users.authenticate(s, "operator", "New-pass-2026") is None
        assert "103" not in await extensions.all_extensions(s)  # a deactivated user's phone rings nobody
        assert (await users.get_user(s, people["agent"], created["id"]))["active"] is False
        with pytest.raises(Conflict):
            await users.delete_user(s, people["admin"], people["admin"].id)
        with pytest.raises(ValidationError):
            await users.create_user(s, people["admin"], {"login": "bad login!", "password": ""})


# --- contact points helper ---------------------------------------------------------------------------

async def test_contact_points_replace_and_of(database: Database, people: dict[str, User]) -> None:
    async with database.transaction() as s:
        client = await clients.create_client(s, people["manager"], {"name": "C"})
        await contact_points.replace(s, "client_id", client["id"], ["+7 916 123 45 67", "89161234567"],
                                     ["A@B.ru"], ["@Some_User", "42"])
        got = await contact_points.of(s, "client_id", [client["id"], 424242])
        assert got[client["id"]] == {"phones": ["+79161234567"], "emails": ["a@b.ru"],
                                     "telegram": ["@some_user", "42"], "bounced_emails": {}}
        assert got[424242] == {"phones": [], "emails": [], "telegram": [], "bounced_emails": {}}
        await contact_points.replace(s, "client_id", client["id"], phones=[])  # others kept
        got = await contact_points.of(s, "client_id", [client["id"]])
        assert got[client["id"]]["phones"] == [] and got[client["id"]]["emails"] == ["a@b.ru"]
        with pytest.raises(ValidationError) as err:
            await contact_points.replace(s, "client_id", client["id"], phones=["+7 916"])
        assert err.value.fields == {"phones": "'+7 916' is not a valid phone number"}


async def test_a_bounced_address_is_marked_and_stays_marked_while_kept(database: Database,
                                                                         people: dict[str, User]) -> None:
    at = datetime(2030, 6, 15, 9, 0, tzinfo=UTC)
    async with database.transaction() as s:
        client = await clients.create_client(s, people["manager"],
                                             {"name": "C", "emails": ["a@b.ru", "c@d.ru"]})
        await contact_points.mark_bounced(s, " A@B.ru", "550 5.1.1 user unknown", at)
        got = (await contact_points.of(s, "client_id", [client["id"]]))[client["id"]]
        assert got["bounced_emails"] == {
            "a@b.ru": {"at": "2030-06-15T09:00:00Z", "reason": "550 5.1.1 user unknown"}}
        await contact_points.replace(s, "client_id", client["id"], emails=["a@b.ru", "e@f.ru"])  # kept
        got = (await contact_points.of(s, "client_id", [client["id"]]))[client["id"]]
        assert list(got["bounced_emails"]) == ["a@b.ru"]
        await contact_points.replace(s, "client_id", client["id"], emails=["new@b.ru"])  # replaced
        assert (await contact_points.of(s, "client_id", [client["id"]]))[client["id"]]["bounced_emails"] == {}
