"""Pipelines and deals: creation defaults, moves, kanban order and totals, search, access."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from hub.bus import Event
from hub.crm import deals, pipelines, timeline
from hub.crm.errors import Conflict, Forbidden, NotFound, ValidationError
from hub.crm.models import (
    Client,
    ContactPoint,
    CustomField,
    Deal,
    Lead,
    LossReason,
    Setting,
    Stage,
    TimelineEntry,
    User,
)
from hub.db import Database

HOSTILE = [
    'O\'Brien "quoted" `tick`',
    "'; DROP TABLE deals; --",
    "<script>alert(1)</script>&amp;",
    "Сделка 🚀👩‍💻 ünïcödé",
    "x" * 300,
]


# --- helpers (also used by the other test modules of the deals part) -----------------------------------


async def make_user(s: Any, login: str, role: str = "agent", name: str | None = None) -> User:
    user = User(login=login, name=name or login.title(), role=role)
    s.add(user)
    await s.flush()
    return user


async def make_client(
    s: Any, name: str, manager_id: int | None = None, phone: str | None = None, email: str | None = None
) -> Client:
    client = Client(name=name, manager_id=manager_id)
    s.add(client)
    await s.flush()
    if phone:
        s.add(ContactPoint(kind="phone", value=phone, raw=phone, tail=phone[-10:], client_id=client.id))
    if email:
        s.add(ContactPoint(kind="email", value=email.lower(), raw=email, client_id=client.id))
    await s.flush()
    return client


async def make_lead(s: Any, name: str, manager_id: int | None = None, phone: str | None = None) -> Lead:
    lead = Lead(name=name, manager_id=manager_id)
    s.add(lead)
    await s.flush()
    if phone:
        s.add(ContactPoint(kind="phone", value=phone, raw=phone, tail=phone[-10:], lead_id=lead.id))
        await s.flush()
    return lead


async def default_stages(s: Any) -> list[Stage]:
    return list((await s.scalars(select(Stage).where(Stage.pipeline_id == 1).order_by(Stage.position))).all())


def record(database: Database) -> list[Event]:
    published: list[Event] = []
    database.bus.subscribe(published.append)
    return published


@pytest.fixture
async def people(database: Database) -> dict[str, Any]:
    async with database.transaction() as s:
        admin = await make_user(s, "admin", "admin", "Администратор")
        manager = await make_user(s, "manager", "manager")
        anna = await make_user(s, "anna", "agent", "Анна")
        boris = await make_user(s, "boris", "agent", "Борис")
        client = await make_client(s, "ООО Ромашка", anna.id, phone="+79161234567", email="Info@Romashka.ru")
        lead = await make_lead(s, "Иван из Telegram", None, phone="+79035550011")
        stages = await default_stages(s)
    return {
        "admin": admin,
        "manager": manager,
        "anna": anna,
        "boris": boris,
        "client": client,
        "lead": lead,
        "stages": stages,
    }


# --- creation ------------------------------------------------


async def test_create_uses_the_default_pipeline_first_stage(database: Database, people: dict) -> None:
    published = record(database)
    anna, client = people["anna"], people["client"]
    async with database.transaction() as s:
        deal = await deals.create_deal(
            s,
            anna,
            {
                "title": "Поставка бумаги",
                "client_id": client.id,
                "amount": "1 234,56",
                "tags": ["опт", "опт", "срочно"],
                "utm_source": "yandex",
                "source": "сайт",
                "next_interaction_at": "2030-01-02T10:00:00+03:00",
                "next_interaction_note": "позвонить",
            },
        )
        assert published == []  # nothing is published before the commit
    first = people["stages"][0]
    assert deal["pipeline_id"] == 1
    assert deal["stage"] == {
        "id": first.id,
        "name": "Первичный интерес",
        "kind": "active",
        "color": first.color,
    }
    assert deal["amount"] == 1234.56 and deal["currency"] == "RUB"
    assert deal["responsible"] == {"id": anna.id, "name": "Анна"}
    assert deal["client"] == {"id": client.id, "name": "ООО Ромашка"} and deal["lead"] is None
    assert deal["tags"] == ["опт", "срочно"]
    assert deal["utm_source"] == "yandex" and deal["source"] == "сайт"
    assert deal["next_interaction_at"] == "2030-01-02T07:00:00Z"
    assert deal["overdue"] is False and deal["closed_at"] is None
    assert [e.name for e in published] == ["deal.created"]
    assert published[0].scope == {"responsible_id": anna.id}
    async with database.reading() as s:
        stored = await s.get(Deal, deal["id"])
        assert stored.amount_minor == 123456
        assert await deals.get_deal(s, anna, deal["id"]) == {**deal, "overdue": False}


async def test_create_in_a_given_pipeline_and_validation(database: Database, people: dict) -> None:
    admin, anna = people["admin"], people["anna"]
    async with database.transaction() as s:
        other = await pipelines.create_pipeline(
            s,
            admin,
            {
                "name": "Сервис",
                "stages": [
                    {"name": "Новая", "color": "#112233"},
                    {"name": "Готово", "kind": "won", "color": "#00AA00"},
                    {"name": "Отказ", "kind": "lost"},
                ],
            },
        )
    assert [st["kind"] for st in other["stages"]] == ["active", "won", "lost"]
    assert other["stages"][1]["color"] == "#00aa00"
    async with database.transaction() as s:
        deal = await deals.create_deal(
            s, anna, {"title": "Ремонт", "lead_id": people["lead"].id, "pipeline_id": other["id"]}
        )
        assert deal["stage"]["name"] == "Новая" and deal["lead"]["name"] == "Иван из Telegram"
    async with database.reading() as s:
        with pytest.raises(ValidationError) as err:
            await deals.create_deal(
                s,
                anna,
                {
                    "title": "x",
                    "client_id": people["client"].id,
                    "pipeline_id": other["id"],
                    "stage_id": people["stages"][0].id,
                },
            )
        assert set(err.value.fields) == {"stage_id"}
        with pytest.raises(ValidationError) as err:
            await deals.create_deal(
                s,
                anna,
                {
                    "title": "",
                    "amount": -5,
                    "currency": "rubles",
                    "client_id": 999_999,
                    "responsible_id": 999_999,
                    "next_interaction_at": "tomorrow",
                    "tags": "x" * 101,
                    "custom": {"nope": 1},
                },
            )
        assert set(err.value.fields) == {
            "title",
            "amount",
            "currency",
            "client_id",
            "responsible_id",
            "next_interaction_at",
            "tags",
            "custom.nope",
        }
        with pytest.raises(ValidationError) as err:
            await deals.create_deal(s, anna, {"title": "no person"})
        assert "client_id" in err.value.fields
        with pytest.raises(ValidationError):
            await deals.create_deal(s, anna, ["not", "an", "object"])


async def test_hostile_text_is_stored_faithfully_or_rejected(database: Database, people: dict) -> None:
    anna, client = people["anna"], people["client"]
    ids = []
    async with database.transaction() as s:
        for text in HOSTILE:
            deal = await deals.create_deal(
                s,
                anna,
                {
                    "title": text,
                    "client_id": client.id,
                    "next_interaction_note": text * 3,
                    "tags": [text[:100]],
                },
            )
            ids.append(deal["id"])
    async with database.reading() as s:
        for deal_id, text in zip(ids, HOSTILE, strict=True):
            got = await deals.get_deal(s, anna, deal_id)
            assert got["title"] == text and got["next_interaction_note"] == text * 3
            assert got["tags"] == [text[:100]]
        for bad in (
            {"title": "a\x00b"},
            {"title": "x" * 10_000},
            {"next_interaction_note": "x" * 10_000},
            {"tags": ["a\x00"]},
            {"title": "t", "utm_term": "\x00"},
            {"title": 5},
        ):
            with pytest.raises(ValidationError):
                await deals.create_deal(s, anna, {"title": "ok", "client_id": client.id, **bad})
        page = await deals.list_deals(s, anna, q="'; DROP TABLE deals; --")
        assert [d["id"] for d in page.items] == [ids[1]]
        assert (await deals.list_deals(s, anna, q="100%_")).items == []
        for bad_q in ("\x00", "100%_\x01"):  # NUL and control characters are refused (finding 9)
            with pytest.raises(ValidationError):
                await deals.list_deals(s, anna, q=bad_q)


async def test_custom_fields_are_checked(database: Database, people: dict) -> None:
    anna, client = people["anna"], people["client"]
    async with database.transaction() as s:
        s.add_all(
            [
                CustomField(
                    entity="deal", key="budget_ok", label="Бюджет", type="choice", choices=["да", "нет"]
                ),
                CustomField(entity="deal", key="rooms", label="Комнат", type="number"),
                CustomField(entity="deal", key="deadline", label="Срок", type="date"),
                CustomField(entity="client", key="client_only", label="x", type="text"),
            ]
        )
    async with database.transaction() as s:
        deal = await deals.create_deal(
            s,
            anna,
            {
                "title": "t",
                "client_id": client.id,
                "custom": {"budget_ok": "да", "rooms": 3, "deadline": "2030-05-01"},
            },
        )
        assert deal["custom"] == {"budget_ok": "да", "rooms": 3, "deadline": "2030-05-01"}
        updated = await deals.update_deal(
            s, anna, deal["id"], {"custom": {"rooms": None, "budget_ok": "нет"}}
        )
        assert updated["custom"] == {"budget_ok": "нет", "deadline": "2030-05-01"}
        with pytest.raises(ValidationError) as err:
            await deals.update_deal(
                s,
                anna,
                deal["id"],
                {"custom": {"budget_ok": "может", "rooms": "три", "deadline": "1 мая", "client_only": "x"}},
            )
        assert set(err.value.fields) == {
            "custom.budget_ok",
            "custom.rooms",
            "custom.deadline",
            "custom.client_only",
        }


# --- update / delete ------------------------------------------------


async def test_update_refuses_stage_changes_and_clears_the_plan(database: Database, people: dict) -> None:
    anna, stages = people["anna"], people["stages"]
    async with database.transaction() as s:
        deal = await deals.create_deal(
            s,
            anna,
            {
                "title": "t",
                "client_id": people["client"].id,
                "next_interaction_at": "2020-01-01T00:00:00Z",
                "tags": ["a"],
            },
        )
        assert deal["overdue"] is True
    async with database.transaction() as s:
        with pytest.raises(ValidationError) as err:
            await deals.update_deal(s, anna, deal["id"], {"stage_id": stages[2].id})
        assert set(err.value.fields) == {"stage_id"}
        same = await deals.update_deal(s, anna, deal["id"], {"stage_id": stages[0].id, "title": "новое"})
        assert same["title"] == "новое"
        updated = await deals.update_deal(
            s,
            anna,
            deal["id"],
            {"next_interaction_at": None, "tags": ["b", "c"], "amount": 10, "currency": "usd"},
        )
    assert updated["next_interaction_at"] is None and updated["overdue"] is False
    assert updated["tags"] == ["b", "c"] and updated["amount"] == 10 and updated["currency"] == "USD"
    async with database.reading() as s:
        assert [d["id"] for d in (await deals.list_deals(s, anna, tag="b")).items] == [deal["id"]]
        assert (await deals.list_deals(s, anna, tag="a")).items == []


async def test_delete_is_for_staff_and_keeps_the_clients_history(database: Database, people: dict) -> None:
    anna, manager, client = people["anna"], people["manager"], people["client"]
    published = record(database)
    async with database.transaction() as s:
        deal = await deals.create_deal(s, anna, {"title": "t", "client_id": client.id})
        await timeline.add_note(s, anna, "deal", deal["id"], {"text": "звонили"})
    async with database.transaction() as s:
        with pytest.raises(Forbidden):
            await deals.delete_deal(s, anna, deal["id"])
        await deals.delete_deal(s, manager, deal["id"])
    assert published[-1].name == "deal.deleted"
    async with database.reading() as s:
        with pytest.raises(NotFound):
            await deals.get_deal(s, manager, deal["id"])
        notes = (await timeline.list_timeline(s, manager, "client", client.id)).items
        assert [n["text"] for n in notes] == ["звонили"] and notes[0]["deal_id"] is None


# --- moves ------------------------------------------------


async def test_move_writes_a_stage_change_entry(database: Database, people: dict) -> None:
    anna, stages = people["anna"], people["stages"]
    async with database.transaction() as s:
        deal = await deals.create_deal(s, anna, {"title": "t", "client_id": people["client"].id})
    published = record(database)
    async with database.transaction() as s:
        moved = await deals.move_deal(
            s,
            anna,
            deal["id"],
            {
                "stage_id": stages[1].id,
                "result": "Обсудили потребности",
                "next_interaction_at": "2030-03-01T09:00:00Z",
                "next_interaction_note": "Отправить КП",
            },
        )
    assert moved["stage"]["id"] == stages[1].id and moved["closed_at"] is None
    assert moved["next_interaction_at"] == "2030-03-01T09:00:00Z"
    assert moved["next_interaction_note"] == "Отправить КП"
    assert moved["stage_changed_at"] >= deal["stage_changed_at"]
    assert {e.name for e in published} == {"deal.updated", "timeline.added"}
    added = next(e for e in published if e.name == "timeline.added")
    assert added.scope["responsible_id"] == anna.id and added.data["entry"]["kind"] == "stage_change"
    async with database.reading() as s:
        entries = (await timeline.list_timeline(s, anna, "deal", deal["id"], kinds=["stage_change"])).items
    assert len(entries) == 1
    entry = entries[0]
    assert entry["payload"] == {
        "from_stage": {"id": stages[0].id, "name": stages[0].name, "kind": "active"},
        "to_stage": {"id": stages[1].id, "name": stages[1].name, "kind": "active"},
        "result": "Обсудили потребности",
        "next_interaction_at": "2030-03-01T09:00:00Z",
        "next_interaction_note": "Отправить КП",
        "loss_reason": None,
    }
    assert "Первичный интерес → Выявление потребностей" in entry["text"]
    assert "Обсудили потребности" in entry["text"] and entry["author"] == {"id": anna.id, "name": "Анна"}
    assert entry["client_id"] == people["client"].id


async def test_lost_needs_a_reason_won_closes_reopen_clears(database: Database, people: dict) -> None:
    anna, admin, stages = people["anna"], people["admin"], people["stages"]
    won, lost = stages[5], stages[6]
    async with database.transaction() as s:
        deal = await deals.create_deal(
            s,
            anna,
            {"title": "t", "client_id": people["client"].id, "next_interaction_at": "2020-01-01T00:00:00Z"},
        )
        other = await pipelines.create_pipeline(s, admin, {"name": "P2", "stages": [{"name": "a"}]})
    async with database.transaction() as s:
        with pytest.raises(ValidationError) as err:
            await deals.move_deal(s, anna, deal["id"], {"stage_id": lost.id, "result": "дорого"})
        assert set(err.value.fields) == {"loss_reason"}
        with pytest.raises(ValidationError) as err:
            await deals.move_deal(s, anna, deal["id"], {"stage_id": lost.id, "loss_reason": "   "})
        assert set(err.value.fields) == {"loss_reason"}
        with pytest.raises(ValidationError) as err:
            await deals.move_deal(s, anna, deal["id"], {"stage_id": lost.id, "loss_reason": 999_999})
        assert set(err.value.fields) == {"loss_reason"}
        with pytest.raises(ValidationError) as err:
            await deals.move_deal(s, anna, deal["id"], {"stage_id": other["stages"][0]["id"]})
        assert set(err.value.fields) == {"stage_id"}
        with pytest.raises(ValidationError):
            await deals.move_deal(s, anna, deal["id"], {})
        lost_deal = await deals.move_deal(
            s, anna, deal["id"], {"stage_id": lost.id, "loss_reason": "Ушли к конкуренту X"}
        )
    assert lost_deal["closed_at"] is not None and lost_deal["overdue"] is False and lost_deal["open"] is False
    assert lost_deal["next_interaction_at"] is None  # a closed deal plans nothing: the plan is cleared
    assert lost_deal["loss_reason"]["name"] == "Ушли к конкуренту X"
    async with database.reading() as s:
        reason = await s.scalar(select(LossReason).where(LossReason.name == "Ушли к конкуренту X"))
        assert reason is not None and reason.active is False  # free text is not offered to everyone
        offered = (await pipelines.list_loss_reasons(s)).items
        assert offered and all(r["active"] for r in offered)
    async with database.transaction() as s:
        reopened = await deals.move_deal(s, anna, deal["id"], {"stage_id": stages[2].id})
        assert reopened["closed_at"] is None and reopened["loss_reason"] is None
        assert reopened["overdue"] is False and reopened["next_interaction_at"] is None
        by_id = await deals.move_deal(
            s, anna, deal["id"], {"stage_id": lost.id, "loss_reason": offered[0]["id"]}
        )
        assert by_id["loss_reason_id"] == offered[0]["id"]
        done = await deals.move_deal(s, anna, deal["id"], {"stage_id": won.id, "result": "Подписали"})
        assert done["stage"]["kind"] == "won" and done["closed_at"] and done["loss_reason"] is None


# --- lists, kanban, totals ------------------------------------------------


async def test_kanban_order_is_nearest_interaction_first_nulls_last(database: Database, people: dict) -> None:
    anna, stage = people["anna"], people["stages"][0]
    base = datetime(2030, 1, 1, tzinfo=UTC)
    plans = [
        base + timedelta(days=3),
        None,
        base + timedelta(days=1),
        base + timedelta(days=1),
        None,
        base + timedelta(hours=5),
        base + timedelta(days=2),
    ]
    ids = []
    async with database.transaction() as s:
        for i, at in enumerate(plans):
            body: dict[str, Any] = {"title": f"d{i}", "client_id": people["client"].id}
            if at:
                body["next_interaction_at"] = at.isoformat()
            ids.append((await deals.create_deal(s, anna, body))["id"])
    expected = [ids[5], ids[2], ids[3], ids[6], ids[0], ids[1], ids[4]]
    got: list[int] = []
    cursor = None
    async with database.reading() as s:
        while True:
            page = await deals.list_stage_deals(s, anna, stage.id, limit=2, cursor=cursor)
            got += [d["id"] for d in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert got == expected
        with pytest.raises(ValidationError):
            await deals.list_stage_deals(s, anna, stage.id, cursor="garbage!")


async def test_list_paging_filters_and_search(database: Database, people: dict) -> None:
    anna, boris, manager = people["anna"], people["boris"], people["manager"]
    async with database.transaction() as s:
        mine = [
            (await deals.create_deal(s, anna, {"title": f"Анна {i}", "client_id": people["client"].id}))["id"]
            for i in range(5)
        ]
        from_lead = (await deals.create_deal(s, boris, {"title": "Лид", "lead_id": people["lead"].id}))["id"]
    async with database.reading() as s:
        seen: list[int] = []
        cursor = None
        while True:
            page = await deals.list_deals(s, manager, limit=2, cursor=cursor)
            seen += [d["id"] for d in page.items]
            if not (cursor := page.next_cursor):
                break
        assert seen == sorted([*mine, from_lead], reverse=True)
        assert [d["id"] for d in (await deals.list_deals(s, anna)).items] == sorted(mine, reverse=True)
        for q in ("8 (916) 123-45-67", "+7 916 123 45 67", "9161234567", "info@romashka.RU", "ромашка"):
            found = {d["id"] for d in (await deals.list_deals(s, manager, q=q)).items}
            assert found == set(mine), q
        assert [d["id"] for d in (await deals.list_deals(s, manager, q="8-903-555-00-11")).items] == [
            from_lead
        ]
        assert [d["id"] for d in (await deals.list_deals(s, manager, lead_id=people["lead"].id)).items] == [
            from_lead
        ]
        assert len((await deals.list_deals(s, manager, responsible_id=anna.id)).items) == 5
        assert (await deals.list_deals(s, manager, pipeline_id=999)).items == []
        with pytest.raises(ValidationError):
            await deals.list_deals(s, manager, cursor="not-a-cursor")
        with pytest.raises(ValidationError):
            await deals.list_deals(s, manager, limit=100_000)


async def test_stage_totals_in_sql_with_ten_thousand_deals(database: Database, people: dict) -> None:
    anna, boris, manager, stages = people["anna"], people["boris"], people["manager"], people["stages"]
    rows = []
    now = datetime.now(UTC)
    for i in range(10_000):
        rows.append(
            {
                "title": f"d{i}",
                "client_id": people["client"].id,
                "pipeline_id": 1,
                "stage_id": stages[i % 3].id,
                "amount_minor": 1000 * (i % 3 + 1) + 1,
                "responsible_id": anna.id if i % 2 else boris.id,
                "currency": "RUB",
                "created_at": now,
                "updated_at": now,
                "stage_changed_at": now,
                "last_activity_at": now,
                "custom": {},
            }
        )
    async with database.transaction() as s:
        await s.execute(insert(Deal), rows)
    # How fast (the kanban and its totals over 10,000 deals) is bench/pages_deals.py's figure: not timed here.
    async with database.reading() as s:
        totals = await deals.stage_totals(s, manager, 1)
        assert list(totals) == [st.id for st in stages]
        counts = [totals[st.id]["count"] for st in stages]
        assert counts == [3334, 3333, 3333, 0, 0, 0, 0]
        assert totals[stages[0].id]["amount"] == 3334 * 10.01
        assert totals[stages[2].id]["amount"] == 3333 * 30.01
        assert sum(t["count"] for t in totals.values()) == await s.scalar(select(func.count(Deal.id)))
        own = await deals.stage_totals(s, anna, 1)
        assert sum(t["count"] for t in own.values()) == 5000
        assert await deals.stage_totals(s, manager, 1, responsible_id=anna.id) == own
        with pytest.raises(NotFound):
            await deals.stage_totals(s, manager, 999)


async def test_stage_totals_by_tag(database: Database, people: dict) -> None:
    anna, stages = people["anna"], people["stages"]
    async with database.transaction() as s:
        await deals.create_deal(
            s, anna, {"title": "a", "client_id": people["client"].id, "amount": 100, "tags": ["vip"]}
        )
        await deals.create_deal(s, anna, {"title": "b", "client_id": people["client"].id, "amount": 50})
    async with database.reading() as s:
        totals = await deals.stage_totals(s, anna, 1, tag="vip")
        assert totals[stages[0].id] == {"count": 1, "amount": 100}
        assert (await deals.stage_totals(s, anna, 1))[stages[0].id] == {"count": 2, "amount": 150}


# --- access ------------------------------------------------


async def test_agents_see_only_their_deals(database: Database, people: dict) -> None:
    anna, boris, manager = people["anna"], people["boris"], people["manager"]
    async with database.transaction() as s:
        deal = await deals.create_deal(s, anna, {"title": "secret", "client_id": people["client"].id})
    async with database.transaction() as s:
        with pytest.raises(NotFound):
            await deals.get_deal(s, boris, deal["id"])
        with pytest.raises(NotFound):
            await deals.update_deal(s, boris, deal["id"], {"title": "x"})
        with pytest.raises(NotFound):
            await deals.move_deal(s, boris, deal["id"], {"stage_id": people["stages"][1].id})
        with pytest.raises(NotFound):
            await deals.get_deal(s, boris, 10**30)
        assert (await deals.list_deals(s, boris)).items == []
        assert (await deals.get_deal(s, manager, deal["id"]))["title"] == "secret"
        # Boris cannot attach a deal to a client he does not see.
        with pytest.raises(ValidationError) as err:
            await deals.create_deal(s, boris, {"title": "x", "client_id": people["client"].id})
        assert set(err.value.fields) == {"client_id"}
    async with database.transaction() as s:
        s.add(Setting(key="agents_see_all", value={"enabled": True}))
    async with database.transaction() as s:
        assert (await deals.get_deal(s, boris, deal["id"]))["id"] == deal["id"]
        with pytest.raises(Forbidden):
            await deals.update_deal(s, boris, deal["id"], {"title": "x"})


# --- pipelines ------------------------------------------------


async def test_pipeline_admin_rules(database: Database, people: dict) -> None:
    admin, anna = people["admin"], people["anna"]
    async with database.transaction() as s:
        with pytest.raises(Forbidden):
            await pipelines.create_pipeline(s, anna, {"name": "x", "stages": [{"name": "a"}]})
        with pytest.raises(ValidationError) as err:
            await pipelines.create_pipeline(
                s,
                admin,
                {
                    "name": "x",
                    "stages": [{"name": "a", "kind": "won"}, {"name": "", "color": "red", "kind": "weird"}],
                },
            )
        assert set(err.value.fields) == {"stages[1].name", "stages[1].color", "stages[1].kind"}
        with pytest.raises(ValidationError) as err:
            await pipelines.create_pipeline(s, admin, {"name": "x", "stages": [{"name": "a", "kind": "won"}]})
        assert set(err.value.fields) == {"stages"}
        created = await pipelines.create_pipeline(
            s,
            admin,
            {
                "name": "Опт",
                "stages": [
                    {"name": "A"},
                    {"name": "B"},
                    {"name": "Won", "kind": "won"},
                    {"name": "Lost", "kind": "lost"},
                ],
            },
        )
        a, b, w, lo = (st["id"] for st in created["stages"])
        deal = await deals.create_deal(
            s, anna, {"title": "t", "client_id": people["client"].id, "stage_id": b}
        )
        assert deal["pipeline_id"] == created["id"]
    async with database.transaction() as s:
        updated = await pipelines.update_pipeline(
            s,
            admin,
            created["id"],
            {
                "name": "Опт 2",
                "stages": [
                    {"id": b, "name": "B2", "color": "#ABCDEF"},
                    {"id": a},
                    {"name": "New"},
                    {"id": w},
                    {"id": lo},
                ],
            },
        )
        assert [st["name"] for st in updated["stages"]] == ["B2", "A", "New", "Won", "Lost"]
        assert [st["position"] for st in updated["stages"]] == [0, 1, 2, 3, 4]
        assert updated["stages"][0]["color"] == "#abcdef"
        removed_unused = await pipelines.update_pipeline(
            s, admin, created["id"], {"stages": [{"id": b}, {"id": w}, {"id": lo}]}
        )
        assert [st["name"] for st in removed_unused["stages"]] == ["B2", "Won", "Lost"]
    async with database.transaction() as s:
        with pytest.raises(Conflict):
            await pipelines.update_pipeline(s, admin, created["id"], {"stages": [{"id": w}, {"name": "Z"}]})
        with pytest.raises(ValidationError):
            await pipelines.update_pipeline(
                s, admin, created["id"], {"stages": [{"id": people["stages"][0].id}]}
            )
        with pytest.raises(Conflict):
            await pipelines.delete_pipeline(s, admin, created["id"])
        with pytest.raises(Conflict):
            await pipelines.delete_pipeline(s, admin, 1)
        with pytest.raises(ValidationError):
            await pipelines.update_pipeline(s, admin, 1, {"is_default": False})
        with pytest.raises(NotFound):
            await pipelines.get_pipeline(s, admin, 999)
    async with database.transaction() as s:
        empty = await pipelines.create_pipeline(
            s, admin, {"name": "Пустая", "stages": [{"name": "a"}], "is_default": True}
        )
        assert (await pipelines.default_pipeline(s)).id == empty["id"]
        await pipelines.update_pipeline(s, admin, 1, {"is_default": True})
        assert (await pipelines.default_pipeline(s)).id == 1
        await pipelines.delete_pipeline(s, admin, empty["id"])
        names = [p["name"] for p in (await pipelines.list_pipelines(s, anna)).items]
        assert names == ["Продажи", "Опт 2"]
    async with database.transaction() as s:
        with pytest.raises(Forbidden):
            await pipelines.create_loss_reason(s, anna, {"name": "x"})
        made = await pipelines.create_loss_reason(s, admin, {"name": "Нет бюджета на 2030"})
        assert made["active"] is True
        with pytest.raises(Conflict):
            await pipelines.create_loss_reason(s, admin, {"name": "Нет бюджета на 2030"})
    async with database.reading() as s:
        assert await s.scalar(select(func.count(TimelineEntry.id))) == 0


async def test_out_of_range_ids_never_reach_the_database(database: Database, people: dict) -> None:
    from hub.crm import tasks

    manager, huge = people["manager"], 10**30
    async with database.reading() as s:
        for call in (
            lambda: deals.list_deals(s, manager, pipeline_id=huge),
            lambda: deals.list_deals(s, manager, cursor="aTo5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5"),
            lambda: deals.stage_totals(s, manager, huge),
            lambda: deals.list_stage_deals(s, manager, huge),
            lambda: deals.create_deal(s, manager, {"title": "t", "client_id": huge}),
            lambda: tasks.list_tasks(s, manager, deal_id=huge),
            lambda: timeline.set_pinned(s, manager, huge, True),
            lambda: pipelines.get_pipeline(s, manager, huge),
            lambda: deals.get_deal(s, manager, huge),
        ):
            with pytest.raises((ValidationError, NotFound)):
                await call()


async def test_a_move_plans_nothing_in_the_past_and_nothing_after_a_deal_is_closed(
        database: Database, people: dict) -> None:
    anna, stages = people["anna"], people["stages"]
    won = next(st for st in stages if st.kind == "won")
    async with database.transaction() as s:
        deal = await deals.create_deal(s, anna, {"title": "t", "client_id": people["client"].id,
                                                 "next_interaction_at": "2020-01-01T00:00:00Z"})
    async with database.transaction() as s:
        with pytest.raises(ValidationError) as err:
            await deals.move_deal(s, anna, deal["id"], {"stage_id": stages[1].id,
                                                        "next_interaction_at": "2021-05-01T09:00:00Z"})
        assert err.value.fields == {"next_interaction_at": "must not be in the past"}
        with pytest.raises(ValidationError) as err:
            await deals.move_deal(s, anna, deal["id"], {"stage_id": won.id, "result": "Подписали",
                                                        "next_interaction_at": "2031-05-01T09:00:00Z"})
        assert err.value.fields == {"next_interaction_at": "must be empty when the deal is closed"}
        # the plan it already had (overdue) may stay as it is on a move between open stages
        kept = await deals.move_deal(s, anna, deal["id"], {"stage_id": stages[1].id, "result": "Созвонились"})
        assert kept["next_interaction_at"] == "2020-01-01T00:00:00Z" and kept["overdue"] is True
        done = await deals.move_deal(s, anna, deal["id"], {"stage_id": won.id, "result": "Подписали",
                                                           "next_interaction_at": "2020-01-01T00:00:00Z"})
    assert done["next_interaction_at"] is None and done["next_interaction_note"] == ""
