"""Tasks: defaults, validation, overdue, list filters, completion, access, assignment notices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.crm import deals, notifications, tasks, timeline
from hub.crm.errors import Forbidden, NotFound, ValidationError
from hub.crm.models import Setting
from hub.db import Database
from tests.integration.test_deals import make_client, make_user, record

NOW = datetime(2030, 6, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
async def world(database: Database) -> dict[str, Any]:
    async with database.transaction() as s:
        anna = await make_user(s, "anna", "agent", "Анна")
        boris = await make_user(s, "boris", "agent", "Борис")
        manager = await make_user(s, "manager", "manager", "Мария")
        client = await make_client(s, "ООО Ромашка", anna.id)
    async with database.transaction() as s:
        deal = await deals.create_deal(s, anna, {"title": "Поставка", "client_id": client.id})
    return {"anna": anna, "boris": boris, "manager": manager, "client": client, "deal": deal}


async def test_create_defaults_and_validation(database: Database, world: dict) -> None:
    anna = world["anna"]
    async with database.transaction() as s:
        task = await tasks.create_task(
            s,
            anna,
            {
                "subject": "Перезвонить",
                "deal_id": world["deal"]["id"],
                "start_at": "2030-06-15T06:00:00Z",
                "due_at": "2030-06-15T10:00:00+03:00",
            },
        )
    assert task["assignee"] == {"id": anna.id, "name": "Анна"} and task["author_id"] == anna.id
    assert task["percent"] == 0 and task["done"] is False and task["kind"] == "task"
    assert task["client_id"] == world["client"].id  # filled from the deal
    assert task["deal"] == {"id": world["deal"]["id"], "name": "Поставка"}
    assert task["due_at"] == "2030-06-15T07:00:00Z"
    async with database.reading() as s:
        with pytest.raises(ValidationError) as err:
            await tasks.create_task(
                s,
                anna,
                {"subject": "x", "start_at": "2030-06-15T10:00:00Z", "due_at": "2030-06-15T09:00:00Z"},
            )
        assert set(err.value.fields) == {"due_at"}
        with pytest.raises(ValidationError) as err:
            await tasks.create_task(
                s,
                anna,
                {
                    "subject": "",
                    "percent": 101,
                    "deal_id": 999_999,
                    "client_id": 999_999,
                    "assignee_id": 999_999,
                    "kind": "x",
                    "due_at": "вчера",
                },
            )
        assert set(err.value.fields) == {
            "subject",
            "percent",
            "deal_id",
            "client_id",
            "assignee_id",
            "kind",
            "due_at",
        }
        with pytest.raises(ValidationError) as err:
            await tasks.create_task(s, anna, {"subject": "x", "percent": -1, "description": "\x00"})
        assert set(err.value.fields) == {"percent", "description"}
        with pytest.raises(ValidationError) as err:  # Boris may not attach a task to Anna's deal
            await tasks.create_task(s, world["boris"], {"subject": "x", "deal_id": world["deal"]["id"]})
        assert set(err.value.fields) == {"deal_id"}


async def test_a_task_on_a_deal_shows_in_its_timeline(database: Database, world: dict) -> None:
    anna = world["anna"]
    async with database.transaction() as s:
        task = await tasks.create_task(s, anna, {"subject": "Отправить КП", "deal_id": world["deal"]["id"]})
        await tasks.complete_task(s, anna, task["id"])
    async with database.reading() as s:
        items = (await timeline.list_timeline(s, anna, "client", world["client"].id, kinds=["task"])).items
    assert [e["payload"]["event"] for e in items] == ["completed", "created"]
    assert all(e["payload"]["task_id"] == task["id"] and e["deal_id"] == world["deal"]["id"] for e in items)


async def test_overdue_and_list_filters(database: Database, world: dict) -> None:
    anna, boris, manager = world["anna"], world["boris"], world["manager"]
    async with database.transaction() as s:
        overdue = await tasks.create_task(
            s, anna, {"subject": "просрочена", "due_at": "2020-01-01T00:00:00Z"}
        )
        today = await tasks.create_task(
            s, anna, {"subject": "сегодня", "due_at": (NOW + timedelta(hours=3)).isoformat()}
        )
        late_today = await tasks.create_task(
            s, anna, {"subject": "вчера по UTC", "due_at": (NOW - timedelta(hours=13)).isoformat()}
        )
        future = await tasks.create_task(
            s, manager, {"subject": "будущее", "assignee_id": anna.id, "due_at": "2099-01-01T00:00:00Z"}
        )
        done = await tasks.create_task(
            s, anna, {"subject": "сделана", "percent": 100, "due_at": "2020-01-01T00:00:00Z"}
        )
        borises = await tasks.create_task(s, boris, {"subject": "Бориса"})
    assert overdue["overdue"] is True and future["overdue"] is False
    assert done["overdue"] is False and done["done"] is True and done["completed_at"]

    async def ids(actor: Any, **kw: Any) -> list[int]:
        async with database.reading() as s:
            return [t["id"] for t in (await tasks.list_tasks(s, actor, now=NOW, **kw)).items]

    assert await ids(anna) == [done["id"], future["id"], late_today["id"], today["id"], overdue["id"]]
    assert await ids(anna, filter="overdue") == [late_today["id"], overdue["id"]]
    assert await ids(anna, filter="today") == [today["id"]]
    assert await ids(anna, filter="done") == [done["id"]]
    assert await ids(manager, filter="mine") == []
    assert await ids(manager, assignee_id=boris.id) == [borises["id"]]
    assert await ids(boris) == [borises["id"]]
    assert await ids(manager, deal_id=world["deal"]["id"]) == []
    async with database.reading() as s:
        with pytest.raises(ValidationError):
            await tasks.list_tasks(s, anna, filter="someday")
        page1 = await tasks.list_tasks(s, manager, limit=4)
        page2 = await tasks.list_tasks(s, manager, limit=4, cursor=page1.next_cursor)
        assert len(page1.items) == 4 and len(page2.items) == 2 and page2.next_cursor is None
        assert not {t["id"] for t in page1.items} & {t["id"] for t in page2.items}


async def test_complete_update_and_reopen(database: Database, world: dict) -> None:
    anna = world["anna"]
    published = record(database)
    async with database.transaction() as s:
        task = await tasks.create_task(s, anna, {"subject": "x", "due_at": "2020-01-01T00:00:00Z"})
        completed = await tasks.complete_task(s, anna, task["id"])
        assert completed["percent"] == 100 and completed["completed_at"] and completed["overdue"] is False
        again = await tasks.complete_task(s, anna, task["id"])
        assert again["completed_at"] == completed["completed_at"]
        reopened = await tasks.update_task(
            s, anna, task["id"], {"percent": 50, "due_at": None, "subject": "новая тема"}
        )
        assert reopened["completed_at"] is None and reopened["due_at"] is None and reopened["percent"] == 50
        assert reopened["subject"] == "новая тема"
        with pytest.raises(ValidationError) as err:
            await tasks.update_task(
                s, anna, task["id"], {"start_at": "2030-01-02T00:00:00Z", "due_at": "2030-01-01T00:00:00Z"}
            )
        assert set(err.value.fields) == {"due_at"}
        with pytest.raises(ValidationError):
            await tasks.update_task(s, anna, task["id"], {"percent": 100.5})
        with pytest.raises(ValidationError):
            await tasks.update_task(s, anna, task["id"], {"assignee_id": None})
    assert {e.name for e in published} == {"task.updated"}
    assert published[0].scope == {"assignee_id": anna.id, "author_id": anna.id}


async def test_assigning_to_someone_else_notifies_them(database: Database, world: dict) -> None:
    anna, boris, manager = world["anna"], world["boris"], world["manager"]
    published = record(database)
    async with database.transaction() as s:
        task = await tasks.create_task(
            s,
            manager,
            {"subject": "Позвонить <b>клиенту</b>", "assignee_id": anna.id, "due_at": "2030-01-01T00:00:00Z"},
        )
        await tasks.create_task(s, anna, {"subject": "себе"})  # no notice to oneself
    notices = [e for e in published if e.name == "notification.created"]
    assert len(notices) == 1 and notices[0].users == frozenset({anna.id})
    assert notices[0].data["notification"]["payload"] == {
        "task_id": task["id"], "subject": "Позвонить <b>клиенту</b>", "due_at": "2030-01-01T00:00:00Z",
        "assigned_by": {"id": manager.id, "name": manager.name}}
    async with database.transaction() as s:
        assert await notifications.unread_count(s, anna) == 1
        assert await notifications.unread_count(s, manager) == 0
        await tasks.update_task(s, manager, task["id"], {"assignee_id": boris.id})
        items = (await notifications.list_notifications(s, boris)).items
        assert [n["title"] for n in items] == ["Новая задача: Позвонить <b>клиенту</b>"]  # the hub's language


async def test_task_access(database: Database, world: dict) -> None:
    anna, boris, manager = world["anna"], world["boris"], world["manager"]
    async with database.transaction() as s:
        task = await tasks.create_task(s, anna, {"subject": "личное"})
        for_boris = await tasks.create_task(s, anna, {"subject": "Борису", "assignee_id": boris.id})
    async with database.transaction() as s:
        with pytest.raises(NotFound):
            await tasks.get_task(s, boris, task["id"])
        with pytest.raises(NotFound):
            await tasks.complete_task(s, boris, task["id"])
        with pytest.raises(NotFound):
            await tasks.get_task(s, boris, 10**25)
        assert (await tasks.complete_task(s, boris, for_boris["id"]))["done"] is True
        with pytest.raises(Forbidden):
            await tasks.delete_task(s, boris, for_boris["id"])  # the assignee completes, the author deletes
        assert (await tasks.get_task(s, manager, task["id"]))["subject"] == "личное"
    async with database.transaction() as s:
        s.add(Setting(key="agents_see_all", value={"enabled": True}))
    async with database.transaction() as s:
        assert (await tasks.get_task(s, boris, task["id"]))["id"] == task["id"]
        with pytest.raises(Forbidden):
            await tasks.update_task(s, boris, task["id"], {"subject": "x"})
        await tasks.delete_task(s, anna, task["id"])
        with pytest.raises(NotFound):
            await tasks.get_task(s, anna, task["id"])
