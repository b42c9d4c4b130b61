"""``GET /api/v1/search`` on both databases (issue 15, «One search»): ё = е, Russian word forms,
fragments of phones and e-mails, access rules, and the index kept in step with every change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import func, select, text

from hub.crm import timeline
from hub.crm.models import SearchDocument
from hub.db import Database
from hub.web.keys import DB
from tests.integration.conftest import Api
from tests.integration.test_migrations import _upgrade
from tests.integration.test_migrations import empty_url as empty_url  # the fixture

SEARCH = "/api/v1/search"


async def found(api: Api, q: str, **params: str) -> list[tuple[str, int]]:
    body = await api.get(SEARCH, params={"q": q, **params})
    return [(item["kind"], item["id"]) for item in body["items"]]


async def hit(api: Api, q: str, kind: str) -> dict[str, Any]:
    items = [i for i in (await api.get(SEARCH, params={"q": q}))["items"] if i["kind"] == kind]
    assert len(items) == 1, items
    return dict(items[0])


async def new_client(api: Api, name: str, **fields: Any) -> dict[str, Any]:
    client: dict[str, Any] = await api.post("/api/v1/clients", {"name": name, **fields}, expect=201)
    return client


async def test_yo_and_ye_are_one_letter_both_ways(admin: Api) -> None:
    fyodorov = await new_client(admin, "ИП Фёдоров Алексей")
    fedorova = await new_client(admin, "Федорова Анна")
    assert await found(admin, "Федоров", kind="client") == [("client", fedorova["id"]),
                                                            ("client", fyodorov["id"])]
    assert ("client", fedorova["id"]) in await found(admin, "фёдорова")
    item = await hit(admin, "ФЁДОРОВ АЛЕКСЕЙ", "client")
    assert item == {"kind": "client", "id": fyodorov["id"], "title": "ИП Фёдоров Алексей", "snippet": "",
                    "url": f"/clients/{fyodorov['id']}"}


async def test_word_forms_and_partial_words(admin: Api, backend: str) -> None:
    client = await new_client(admin, "ООО «Северный ветер»")
    note = await admin.post(f"/api/v1/clients/{client['id']}/notes",
                            {"text": "Просили переносить звонки на вечер, договоры подписывает директор"},
                            expect=201)
    for q in ("звонок", "звонка", "звонки", "договора", "Договор", "директором", "подписывают"):
        assert ("note", note["id"]) in await found(admin, q), q
    # SQLite strips no -ов/-ев (Иванов would find every Иван); PostgreSQL's stemmer knows the word
    assert (("note", note["id"]) in await found(admin, "звонков")) == (backend == "postgres")
    assert await found(admin, "звонок подписание") == []  # every word must match
    assert ("client", client["id"]) in await found(admin, "северн")  # typed so far
    assert ("client", client["id"]) in await found(admin, "северного ветра")
    assert ("client", client["id"]) in await found(admin, "ерный ве")  # a fragment inside a name
    item = await hit(admin, "звонок", "note")
    assert item["title"] == "ООО «Северный ветер»"
    assert item["url"] == f"/clients/{client['id']}#entry-{note['id']}"
    assert "звонки" in item["snippet"]


async def test_any_fragment_of_a_phone_number(admin: Api) -> None:
    client = await new_client(admin, "ООО Ромашка", phones=["+7 (916) 706-76-60"])
    for q in ("706-76", "7067660", "8 916 706", "+7916706", "9167067660", "(916) 706-76-60", "7660"):
        assert await found(admin, q) == [("client", client["id"])], q
        assert (await hit(admin, q, "client"))["snippet"] == "+7 (916) 706-76-60"
    assert await found(admin, "706") == []  # three digits are not a phone fragment
    assert await found(admin, "706-77") == []


async def test_any_fragment_of_an_e_mail(admin: Api) -> None:
    client = await new_client(admin, "ООО Северный ветер", emails=["Zakaz@Severny-Veter.ru"])
    contact = await admin.post("/api/v1/contacts", {"client_id": client["id"], "name": "Пётр Снабженцев",
                                                    "emails": ["petr_s@severny-veter.ru"]}, expect=201)
    assert await found(admin, "zakaz@sever") == [("client", client["id"])]
    assert (await hit(admin, "zakaz@sever", "client"))["snippet"] == "zakaz@severny-veter.ru"
    assert await found(admin, "petr_s@") == [("contact", contact["id"])]
    assert await found(admin, "petrXs@") == []  # _ is a letter here, not a wildcard
    both = {("client", client["id"]), ("contact", contact["id"])}
    assert set(await found(admin, "severny-veter.ru")) == both


async def test_messages_letters_and_calls_are_found(admin: Api, app: web.Application) -> None:
    client = await new_client(admin, "ООО Ромашка")
    deal = await admin.post("/api/v1/deals", {"title": "Поставка бумаги", "client_id": client["id"]},
                            expect=201)
    async with app[DB].transaction() as s:
        sms = await timeline.add_entry(s, kind="sms", direction="in", text="Пришлите счёт на оплату",
                                       deal_id=deal["id"], client_id=client["id"],
                                       payload={"address": "+79161234567"})
        letter = await timeline.add_entry(
            s, kind="email", direction="in", text="Добрый день, во вложении реквизиты",
            client_id=client["id"],
            payload={"subject": "Реквизиты для договора", "address": "buh@romashka.ru"})
        call = await timeline.add_entry(s, kind="call", direction="in", text="Incoming call",
                                        client_id=client["id"], payload={"number": "+74950001122"})
        stage = await timeline.add_entry(s, kind="system", text="счёт выставлен", client_id=client["id"])
    assert sms and letter and call and stage
    assert await found(admin, "счет") == [("message", sms.id)]
    assert await found(admin, "реквизитами") == [("letter", letter.id)]
    assert await found(admin, "buh@roma") == [("letter", letter.id)]
    assert await found(admin, "000-11") == [("call", call.id)]
    assert await found(admin, "1234567") == [("message", sms.id)]
    assert (await hit(admin, "счет", "message"))["url"] == f"/deals/{deal['id']}#entry-{sms.id}"
    assert (await hit(admin, "реквизиты", "letter"))["snippet"].startswith("Реквизиты для договора — ")


async def test_an_agent_finds_only_what_they_may_open(admin: Api, agent: Api, agent2: Api) -> None:
    mine = await new_client(admin, "ООО Орион Первый", manager_id=agent.id, phones=["+79160001111"])
    theirs = await new_client(admin, "ООО Орион Второй", manager_id=agent2.id, phones=["+79160002222"])
    secret = await admin.post("/api/v1/deals", {"title": "Орион тайная поставка", "client_id": theirs["id"],
                                                "responsible_id": agent2.id}, expect=201)
    note = await admin.post(f"/api/v1/deals/{secret['id']}/notes", {"text": "Орион торгуется"}, expect=201)
    own_lead = await admin.post("/api/v1/leads", {"name": "Орион лид", "manager_id": agent.id}, expect=201)
    their_lead = await admin.post("/api/v1/leads", {"name": "Орион чужой лид", "manager_id": agent2.id},
                                  expect=201)
    assert set(await found(agent, "орион")) == {("client", mine["id"]), ("lead", own_lead["id"])}
    assert await found(agent, "0002222") == []
    assert set(await found(agent2, "орион")) == {("client", theirs["id"]), ("deal", secret["id"]),
                                                 ("note", note["id"]), ("lead", their_lead["id"])}
    everything = set(await found(admin, "орион"))
    assert everything == {("client", mine["id"]), ("client", theirs["id"]), ("deal", secret["id"]),
                          ("note", note["id"]), ("lead", own_lead["id"]), ("lead", their_lead["id"])}


async def test_the_index_follows_updates_and_deletes(admin: Api, app: web.Application) -> None:
    client = await new_client(admin, "ООО Старое Имя", phones=["+79165550001"], emails=["old@firma.ru"])
    await admin.patch(f"/api/v1/clients/{client['id']}", {"name": "ООО Новое Имя", "phones": ["+79165550002"],
                                                          "emails": []})
    assert await found(admin, "старое") == []
    assert await found(admin, "новое") == [("client", client["id"])]
    assert await found(admin, "5550001") == [] and await found(admin, "old@firma") == []
    assert await found(admin, "5550002") == [("client", client["id"])]

    lead = await admin.post("/api/v1/leads", {"name": "Лид Звонарёв", "phones": ["+79165550003"]}, expect=201)
    assert await found(admin, "5550003") == [("lead", lead["id"])]
    converted = await admin.post(f"/api/v1/leads/{lead['id']}/convert", {}, expect=200)
    # the phone moved to the new client (a bulk UPDATE): the index followed
    assert ("client", converted["client"]["id"]) in await found(admin, "5550003")
    assert ("lead", lead["id"]) not in await found(admin, "5550003")

    note = await admin.post(f"/api/v1/clients/{client['id']}/notes", {"text": "Заметка про жирафа"},
                            expect=201)
    assert await found(admin, "жираф") == [("note", note["id"])]
    await admin.delete(f"/api/v1/clients/{client['id']}")
    assert await found(admin, "новое") == [] and await found(admin, "жираф") == []
    async with app[DB].reading() as s:  # the cascade removed the entries' documents too
        left = await s.scalar(select(func.count()).select_from(SearchDocument).where(
            SearchDocument.kind.in_(("client", "note")),
            SearchDocument.ref_id.in_((client["id"], note["id"]))))
    assert left == 0


async def test_tasks_deals_and_contacts_are_found(admin: Api) -> None:
    client = await new_client(admin, "ООО Ёлка")
    contact = await admin.post("/api/v1/contacts", {"client_id": client["id"], "name": "Семёнов Игорь",
                                                    "position": "снабженец", "phones": ["+74951112233"]},
                               expect=201)
    deal = await admin.post("/api/v1/deals", {"title": "Ёлочные игрушки", "client_id": client["id"]},
                            expect=201)
    task = await admin.post("/api/v1/tasks", {"subject": "Позвонить Семёнову", "description": "про ёлки",
                                              "client_id": client["id"]}, expect=201)
    assert set(await found(admin, "семенов")) == {("contact", contact["id"]), ("task", task["id"])}
    assert await hit(admin, "семенов", "contact") == {
        "kind": "contact", "id": contact["id"], "title": "Семёнов Игорь", "snippet": "ООО Ёлка, снабженец",
        "url": f"/clients/{client['id']}"}
    assert await found(admin, "елочные", kind="deal") == [("deal", deal["id"])]
    assert await hit(admin, "игрушки", "deal") == {
        "kind": "deal", "id": deal["id"], "title": "Ёлочные игрушки", "snippet": "ООО Ёлка",
        "url": f"/deals/{deal['id']}"}
    assert (await hit(admin, "позвонить", "task"))["url"] == f"/tasks/{task['id']}"
    assert set(await found(admin, "ел", kind="client,deal")) == {("client", client["id"]),
                                                                 ("deal", deal["id"])}


async def refused(api: Api, **params: str) -> dict[str, str]:
    fields: dict[str, str] = (await api.get(SEARCH, params=params, expect=422))["error"]["fields"]
    return fields


async def test_bad_input_and_limits(admin: Api) -> None:
    assert (await admin.get(SEARCH, expect=422))["error"]["fields"] == {"q": "is required"}
    assert "kind" in await refused(admin, q="x", kind="planet")
    assert "q" in await refused(admin, q="я" * 201)
    assert "limit" in await refused(admin, q="x", limit="51")
    assert (await admin.get(SEARCH, params={"q": "   "}))["items"] == []
    for q in ('"', "*", "a OR b", "NEAR(", "-", ":*", "&|!", "%", "\\"):
        await admin.get(SEARCH, params={"q": q})  # never a 500 (FTS syntax, LIKE wildcards)
    for n in range(7):
        await new_client(admin, f"Клиент Лимит {n}")
    assert len(await found(admin, "лимит")) == 5
    assert len(await found(admin, "лимит", limit="7")) == 7


SOURCE_TABLES = {"clients", "contacts", "leads", "deals", "tasks", "timeline_entries", "contact_points"}


async def test_every_source_table_has_its_search_triggers(database: Database, backend: str) -> None:
    """A later migration that rebuilds one of these tables on SQLite (batch mode) drops its triggers."""
    async with database.reading() as s:
        if backend == "sqlite":
            rows = (await s.execute(text("SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger' "
                                         "AND name LIKE 'search%'"))).all()
            ops = ("ai", "au", "ad")
            expected = {(table, f"search_{table}_{op}") for table in SOURCE_TABLES for op in ops}
            expected |= {("search_documents", f"search_documents_{op}") for op in ("ai", "au", "ad")}
            assert set(map(tuple, rows)) == expected
        else:
            rows = (await s.execute(text("SELECT tgrelid::regclass::text FROM pg_trigger "
                                         "WHERE tgname = 'search_index'"))).all()
            assert {r[0] for r in rows} == SOURCE_TABLES


async def test_the_migration_indexes_the_rows_that_were_there(empty_url: str) -> None:
    from alembic.script import ScriptDirectory

    from hub.bus import InProcessBus
    from hub.crm import finder
    from hub.crm.models import User
    from hub.db import alembic_config, create_engine, migrate

    before = ScriptDirectory.from_config(alembic_config(empty_url)).get_revision("0016").down_revision
    engine = create_engine(empty_url)
    database = Database(engine, InProcessBus())
    try:
        await _upgrade(engine, str(before))
        async with engine.begin() as connection:
            at = {"at": datetime(2026, 1, 1)}
            await connection.execute(text(
                "INSERT INTO users (id, login, name, password_hash, role, language, active, created_at) "
                "VALUES (1, 'boss', 'Boss', '', 'admin', 'ru', true, :at)"), at)
            await connection.execute(text(
                "INSERT INTO clients (id, kind, name, full_name, relationship_type, region, industry, "
                "comment, custom, created_at, updated_at) "
                "VALUES (7, 'company', 'ООО «Берёзка»', '', 'buyer', '', '', '', '{}', :at, :at)"), at)
            await connection.execute(text(
                "INSERT INTO contact_points (id, kind, value, raw, tail, label, client_id, created_at) "
                "VALUES (1, 'phone', '+79167067660', '', '9167067660', '', 7, :at)"), at)
            await connection.execute(text(
                "INSERT INTO timeline_entries (id, kind, occurred_at, text, payload, pinned, client_id, "
                "created_at) VALUES (3, 'note', :at, 'Звонки по средам', '{}', false, 7, :at)"), at)
        await migrate(engine)
        async with database.reading() as s:
            boss = await s.get(User, 1)
            assert boss is not None
            assert [(h.kind, h.id) for h in await finder.search(s, boss, "березка")] == [("client", 7)]
            assert [(h.kind, h.id) for h in await finder.search(s, boss, "706-76")] == [("client", 7)]
            assert [(h.kind, h.id) for h in await finder.search(s, boss, "звонок")] == [("note", 3)]
    finally:
        await database.dispose()
