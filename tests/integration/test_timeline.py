"""The timeline: notes, paging, kind filter, idempotent channel entries, pins, access, events."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.crm import deals, timeline
from hub.crm.errors import Forbidden, NotFound, ValidationError
from hub.crm.models import Attachment, Deal, Setting, TimelineEntry
from hub.db import Database
from tests.integration.test_deals import make_client, make_lead, make_user, record


@pytest.fixture
async def world(database: Database) -> dict[str, Any]:
    async with database.transaction() as s:
        anna = await make_user(s, "anna", "agent", "Анна")
        boris = await make_user(s, "boris", "agent", "Борис")
        manager = await make_user(s, "manager", "manager", "Мария")
        client = await make_client(s, "ООО Ромашка", anna.id)
        lead = await make_lead(s, "Неизвестный", None)
    async with database.transaction() as s:
        deal = await deals.create_deal(s, anna, {"title": "Поставка", "client_id": client.id})
        other = await deals.create_deal(
            s, manager, {"title": "Чужая", "client_id": client.id, "responsible_id": boris.id}
        )
    return {
        "anna": anna,
        "boris": boris,
        "manager": manager,
        "client": client,
        "lead": lead,
        "deal": deal,
        "other": other,
    }


async def test_paging_across_pages_without_duplicates_and_kind_filter(
    database: Database, world: dict
) -> None:
    anna, deal = world["anna"], world["deal"]
    kinds = ["note", "call", "sms", "note", "email", "telegram", "note", "call", "note", "sms", "note"]
    async with database.transaction() as s:
        for i, kind in enumerate(kinds):
            if kind == "note":
                await timeline.add_note(s, anna, "deal", deal["id"], {"text": f"n{i}"})
            else:
                await timeline.add_entry(s, kind=kind, text=f"e{i}", direction="in", deal_id=deal["id"])
    async with database.reading() as s:
        seen: list[int] = []
        cursor = None
        pages = 0
        while True:
            page = await timeline.list_timeline(s, anna, "deal", deal["id"], limit=3, cursor=cursor)
            seen += [e["id"] for e in page.items]
            pages += 1
            if not (cursor := page.next_cursor):
                break
        assert pages == 4 and len(seen) == len(kinds) == len(set(seen))
        assert seen == sorted(seen, reverse=True)  # newest first

        calls = await timeline.list_timeline(s, anna, "deal", deal["id"], kinds=["call", "sms"], limit=2)
        assert [e["kind"] for e in calls.items] == ["sms", "call"] and calls.next_cursor
        rest = await timeline.list_timeline(
            s, anna, "deal", deal["id"], kinds="call,sms", cursor=calls.next_cursor
        )
        assert [e["kind"] for e in rest.items] == ["sms", "call"] and rest.next_cursor is None
        notes = await timeline.list_timeline(s, anna, "deal", deal["id"], kinds=["note"])
        assert [e["text"] for e in notes.items] == ["n10", "n8", "n6", "n3", "n0"]
        assert notes.items[0]["author"] == {"id": anna.id, "name": "Анна"}
        for bad in (["call", "fax"], "call,<script>", [1]):
            with pytest.raises(ValidationError) as err:
                await timeline.list_timeline(s, anna, "deal", deal["id"], kinds=bad)
            assert set(err.value.fields) == {"kind"}
        with pytest.raises(ValidationError):
            await timeline.list_timeline(s, anna, "deal", deal["id"], cursor="!!")
        with pytest.raises(ValidationError):
            await timeline.list_timeline(s, anna, "dealz", deal["id"])


async def test_client_timeline_includes_its_deals_but_hides_other_agents_deals(
    database: Database, world: dict
) -> None:
    anna, boris, manager, client = world["anna"], world["boris"], world["manager"], world["client"]
    async with database.transaction() as s:
        on_client = await timeline.add_note(s, anna, "client", client.id, {"text": "о клиенте"})
        on_deal = await timeline.add_note(s, anna, "deal", world["deal"]["id"], {"text": "о сделке"})
        on_other = await timeline.add_note(s, boris, "deal", world["other"]["id"], {"text": "у Бориса"})
    assert on_deal["client_id"] == client.id and on_deal["deal_id"] == world["deal"]["id"]
    async with database.reading() as s:
        for_manager = await timeline.list_timeline(s, manager, "client", client.id)
        assert [e["id"] for e in for_manager.items] == [on_other["id"], on_deal["id"], on_client["id"]]
        for_anna = await timeline.list_timeline(s, anna, "client", client.id)
        assert [e["id"] for e in for_anna.items] == [on_deal["id"], on_client["id"]]
        # Boris sees the client through his deal, and only his deal's entries besides the client's own.
        for_boris = await timeline.list_timeline(s, boris, "client", client.id)
        assert [e["id"] for e in for_boris.items] == [on_other["id"], on_client["id"]]


async def test_access_to_a_timeline_follows_its_target(database: Database, world: dict) -> None:
    anna, boris, lead = world["anna"], world["boris"], world["lead"]
    async with database.transaction() as s:
        note = await timeline.add_note(s, anna, "deal", world["deal"]["id"], {"text": "x"})
    async with database.transaction() as s:
        with pytest.raises(NotFound):
            await timeline.list_timeline(s, boris, "deal", world["deal"]["id"])
        with pytest.raises(NotFound):
            await timeline.add_note(s, boris, "deal", world["deal"]["id"], {"text": "x"})
        with pytest.raises(NotFound):
            await timeline.add_note(s, boris, "deal", 10**20, {"text": "x"})
        with pytest.raises(NotFound):
            await timeline.set_pinned(s, boris, note["id"], True)
        # An unassigned lead is visible to every agent (the Unsorted inbox).
        added = await timeline.add_note(s, boris, "lead", lead.id, {"text": "перезвонить"})
        assert added["lead_id"] == lead.id
    async with database.transaction() as s:
        s.add(Setting(key="agents_see_all", value={"enabled": True}))
    async with database.transaction() as s:
        assert (await timeline.list_timeline(s, boris, "deal", world["deal"]["id"])).items
        with pytest.raises(Forbidden):
            await timeline.set_pinned(s, boris, note["id"], True)


async def test_notes_store_hostile_text_or_reject_it(database: Database, world: dict) -> None:
    anna, deal = world["anna"], world["deal"]
    texts = [
        "'; DELETE FROM timeline_entries; --",
        "<img src=x onerror=alert(1)>",
        'Привет 👋🏽 "мир"',
        "я" * 10_000,
        "x" * 20_000,
    ]
    async with database.transaction() as s:
        for text in texts:
            await timeline.add_note(s, anna, "deal", deal["id"], {"text": text, "pinned": True})
        for bad in (
            {"text": "a\x00b"},
            {"text": "x" * 20_001},
            {"text": ""},
            {"text": "   "},
            {},
            {"text": 42},
            {"text": "ok", "pinned": "yes"},
        ):
            with pytest.raises(ValidationError):
                await timeline.add_note(s, anna, "deal", deal["id"], bad)
    async with database.reading() as s:
        items = (await timeline.list_timeline(s, anna, "deal", deal["id"], kinds=["note"])).items
    assert [e["text"] for e in reversed(items)] == texts
    assert all(e["pinned"] for e in items)


async def test_external_key_makes_replays_no_ops(database: Database, world: dict) -> None:
    deal_id = world["deal"]["id"]
    published = record(database)
    async with database.transaction() as s:
        first = await timeline.add_entry(
            s,
            kind="call",
            direction="in",
            deal_id=deal_id,
            text="звонок",
            external_key="ami:1700000000.42",
            payload={"talk_seconds": 42},
        )
        assert first is not None
        assert (
            await timeline.add_entry(s, kind="call", deal_id=deal_id, external_key="ami:1700000000.42")
            is None
        )
    async with database.transaction() as s:
        assert (
            await timeline.add_entry(s, kind="call", deal_id=deal_id, external_key="ami:1700000000.42")
            is None
        )
    assert [e.name for e in published] == ["timeline.added"]
    entry = published[0].data["entry"]
    assert entry["client_id"] == world["client"].id and entry["payload"] == {"talk_seconds": 42}
    assert published[0].scope == {"responsible_id": world["anna"].id, "manager_id": world["anna"].id}
    async with database.reading() as s:
        assert await s.scalar(select(func.count(TimelineEntry.id))) == 1


async def test_concurrent_replays_add_one_entry(database: Database, world: dict) -> None:
    deal_id = world["deal"]["id"]
    inserted = asyncio.Event()

    async def first() -> Any:
        async with database.transaction() as s:
            entry = await timeline.add_entry(
                s, kind="telegram", deal_id=deal_id, external_key="tg:1:99", text="привет"
            )
            inserted.set()
            await asyncio.sleep(0.3)  # the other transaction reaches its INSERT meanwhile
        return entry

    async def second() -> Any:
        await inserted.wait()
        async with database.transaction() as s:
            result = await timeline.add_entry(
                s, kind="telegram", deal_id=deal_id, external_key="tg:1:99", text="привет"
            )
            # The unit of work stays usable after the lost race.
            await timeline.add_entry(s, kind="system", deal_id=deal_id, text="after the race")
        return result

    a, b = await asyncio.gather(first(), second())
    assert a is not None and b is None
    async with database.reading() as s:
        keys = (await s.scalars(select(TimelineEntry.kind).order_by(TimelineEntry.id))).all()
    assert keys == ["telegram", "system"]


async def test_rolled_back_entries_are_neither_stored_nor_published(database: Database, world: dict) -> None:
    published = record(database)
    with pytest.raises(RuntimeError):
        async with database.transaction() as s:
            await timeline.add_entry(s, kind="sms", deal_id=world["deal"]["id"], external_key="sms:SM1")
            raise RuntimeError("boom")
    assert published == []
    async with database.transaction() as s:
        assert await timeline.add_entry(s, kind="sms", deal_id=world["deal"]["id"], external_key="sms:SM1")
    assert [e.name for e in published] == ["timeline.added"]


async def test_add_entry_checks_input_and_bumps_last_activity(database: Database, world: dict) -> None:
    deal_id = world["deal"]["id"]
    later = datetime.now(UTC) + timedelta(hours=1)
    async with database.transaction() as s:
        entry = await timeline.add_entry(
            s,
            kind="email",
            direction="out",
            deal_id=deal_id,
            text="письмо\x00с NUL",
            occurred_at=later,
            payload={"subject": "тема\x00", "to": ["a@b.c"]},
        )
        assert entry is not None and entry.text == "письмо\ufffdс NUL"
        s.add(
            Attachment(
                entry_id=entry.id,
                filename="счёт.pdf",
                content_type="application/pdf",
                size=10,
                sha256="0" * 64,
            )
        )
        for bad in (
            {"kind": "fax"},
            {"kind": "sms", "direction": "sideways"},
            {"kind": "sms"},
            {"kind": "sms", "deal_id": 999_999},
            {"kind": "sms", "client_id": 999_999},
            {"kind": "sms", "deal_id": deal_id, "occurred_at": datetime(2020, 1, 1)},
            {"kind": "sms", "deal_id": deal_id, "external_key": ""},
        ):
            with pytest.raises(ValidationError):
                await timeline.add_entry(s, **bad)
    async with database.reading() as s:
        stored = await s.get(Deal, deal_id)
        assert stored.last_activity_at == later.replace(microsecond=later.microsecond)
        item = (await timeline.list_timeline(s, world["anna"], "deal", deal_id)).items[0]
    assert item["payload"] == {"subject": "тема\ufffd", "to": ["a@b.c"]}
    assert item["attachments"] == [
        {
            "id": item["attachments"][0]["id"],
            "filename": "счёт.pdf",
            "content_type": "application/pdf",
            "size": 10,
        }
    ]
    assert item["occurred_at"] == later.isoformat().replace("+00:00", "Z")


async def test_pinning(database: Database, world: dict) -> None:
    anna = world["anna"]
    published = record(database)
    async with database.transaction() as s:
        note = await timeline.add_note(s, anna, "deal", world["deal"]["id"], {"text": "важно"})
        assert note["pinned"] is False
        pinned = await timeline.set_pinned(s, anna, note["id"], True)
        assert pinned["pinned"] is True
        with pytest.raises(ValidationError):
            await timeline.set_pinned(s, anna, note["id"], "true")
        with pytest.raises(NotFound):
            await timeline.set_pinned(s, anna, 999_999, True)
    assert [e.name for e in published] == ["timeline.added", "timeline.updated"]
    async with database.reading() as s:
        items = (await timeline.list_timeline(s, anna, "deal", world["deal"]["id"])).items
        assert items[0]["pinned"] is True
