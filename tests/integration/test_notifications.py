"""The bell: notify, list with paging, unread count, mark read, delete — each user only their own."""

from __future__ import annotations

from typing import Any

import pytest

from hub.crm import notifications
from hub.crm.errors import ValidationError
from hub.db import Database
from tests.integration.test_deals import make_user, record


@pytest.fixture
async def users(database: Database) -> dict[str, Any]:
    async with database.transaction() as s:
        return {"anna": await make_user(s, "anna"), "boris": await make_user(s, "boris")}


async def test_notify_publishes_to_the_user_after_commit(database: Database, users: dict) -> None:
    anna = users["anna"]
    published = record(database)
    async with database.transaction() as s:
        item = await notifications.notify(
            s,
            anna.id,
            kind="missed_call",
            title="Пропущенный звонок",
            text="+7 916 123-45-67",
            link="/calls/1",
            payload={"call_id": 1},
        )
        assert published == []
    assert item["read"] is False and item["read_at"] is None and item["payload"] == {"call_id": 1}
    assert [(e.name, e.users) for e in published] == [("notification.created", frozenset({anna.id}))]
    assert published[0].data == {"notification": item}
    with pytest.raises(RuntimeError):
        async with database.transaction() as s:
            await notifications.notify(s, anna.id, kind="x", title="rolled back")
            raise RuntimeError
    assert len(published) == 1
    async with database.transaction() as s:
        with pytest.raises(ValidationError):
            await notifications.notify(s, 999_999, kind="x", title="nobody")


async def test_hostile_titles_are_kept_storable(database: Database, users: dict) -> None:
    anna = users["anna"]
    async with database.transaction() as s:
        item = await notifications.notify(
            s, anna.id, kind="k" * 50, title="Я" * 1000 + "\x00", text="<script>\x00</script> 🚀"
        )
    assert len(item["title"]) == 300 and item["title"].endswith("…") and len(item["kind"]) == 32
    assert item["text"] == "<script>\ufffd</script> 🚀"


async def test_list_paging_unread_mark_and_delete(database: Database, users: dict) -> None:
    anna, boris = users["anna"], users["boris"]
    async with database.transaction() as s:
        mine = [(await notifications.notify(s, anna.id, kind="info", title=f"n{i}"))["id"] for i in range(7)]
        theirs = (await notifications.notify(s, boris.id, kind="info", title="b"))["id"]
    async with database.transaction() as s:
        seen: list[int] = []
        cursor = None
        while True:
            page = await notifications.list_notifications(s, anna, limit=3, cursor=cursor)
            seen += [n["id"] for n in page.items]
            if not (cursor := page.next_cursor):
                break
        assert seen == list(reversed(mine))
        assert await notifications.unread_count(s, anna) == 7
        # Boris's id in the list is ignored: nobody marks another user's bell.
        assert await notifications.mark_read(s, anna, [mine[0], mine[1], theirs]) == 2
        assert await notifications.unread_count(s, anna) == 5
        assert await notifications.unread_count(s, boris) == 1
        unread = await notifications.list_notifications(s, anna, unread=True)
        assert [n["id"] for n in unread.items] == list(reversed(mine[2:]))
        read = await notifications.list_notifications(s, anna, unread=False)
        assert {n["id"] for n in read.items} == {mine[0], mine[1]} and all(n["read"] for n in read.items)
        for bad in ("all", [True], ["1"], [0], [2**70], list(range(1, 2000))):
            with pytest.raises(ValidationError):
                await notifications.mark_read(s, anna, bad)
        assert await notifications.mark_read(s, anna, []) == 0
        assert await notifications.mark_read(s, anna) == 5
        assert await notifications.unread_count(s, anna) == 0
        assert await notifications.delete_all(s, anna) == 7
        assert (await notifications.list_notifications(s, anna)).items == []
        assert len((await notifications.list_notifications(s, boris)).items) == 1
