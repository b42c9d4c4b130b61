"""Timelines of deals, clients and leads; notes; pinning."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import Api


async def targets(admin: Api) -> dict[str, dict[str, Any]]:
    client = await admin.post("/api/v1/clients", {"name": "ООО Ромашка"}, expect=201)
    lead = await admin.post("/api/v1/leads", {"name": "Лид"}, expect=201)
    deal = await admin.post("/api/v1/deals", {"title": "Сделка", "client_id": client["id"]}, expect=201)
    return {"clients": client, "leads": lead, "deals": deal}


@pytest.mark.parametrize("plural", ["deals", "clients", "leads"])
async def test_notes_appear_newest_first_and_can_be_pinned(admin: Api, plural: str) -> None:
    target = (await targets(admin))[plural]
    base = f"/api/v1/{plural}/{target['id']}"
    first = await admin.post(f"{base}/notes", {"text": "Первая заметка"}, expect=201)
    second = await admin.post(f"{base}/notes", {"text": "<b>Вторая</b> 🎉"}, expect=201)
    assert first["kind"] == "note" and first["pinned"] is False
    page = await admin.get(f"{base}/timeline", params={"kind": "note"})
    assert [e["id"] for e in page["items"]] == [second["id"], first["id"]]
    assert page["items"][0]["text"] == "<b>Вторая</b> 🎉"
    pinned = await admin.patch(f"/api/v1/timeline/{first['id']}", {"pinned": True})
    assert pinned["pinned"] is True
    page = await admin.get(f"{base}/timeline", params={"kind": "note"})
    assert next(e for e in page["items"] if e["id"] == first["id"])["pinned"] is True
    one = await admin.get(f"{base}/timeline", params={"kind": "note", "limit": "1"})
    assert len(one["items"]) == 1 and one["next_cursor"]
    rest = await admin.get(f"{base}/timeline", params={"kind": "note", "cursor": one["next_cursor"]})
    assert [e["id"] for e in rest["items"]] == [first["id"]]


async def test_timeline_input_errors(admin: Api) -> None:
    deal = (await targets(admin))["deals"]
    base = f"/api/v1/deals/{deal['id']}"
    assert "kind" in (await admin.get(f"{base}/timeline", params={"kind": "call,fax"},
                                      expect=422))["error"]["fields"]
    assert "text" in (await admin.post(f"{base}/notes", {}, expect=422))["error"]["fields"]
    assert "text" in (await admin.post(f"{base}/notes", {"text": "a\x00"}, expect=422))["error"]["fields"]
    await admin.post(f"{base}/notes", raw="{", expect=400)
    await admin.post(f"{base}/notes", raw="[]", expect=422)
    await admin.get("/api/v1/deals/999999/timeline", expect=404)
    await admin.post("/api/v1/leads/999999/notes", {"text": "x"}, expect=404)
    await admin.patch("/api/v1/timeline/999999", {"pinned": True}, expect=404)
    note = await admin.post(f"{base}/notes", {"text": "x"}, expect=201)
    assert "pinned" in (await admin.patch(f"/api/v1/timeline/{note['id']}", {"pinned": "yes"},
                                          expect=422))["error"]["fields"]
    long_note = await admin.post(f"{base}/notes", {"text": "я" * 10_000}, expect=None)
    assert ("error" in long_note and long_note["error"]["fields"]) or long_note["text"] == "я" * 10_000


async def test_others_cannot_read_or_pin_what_they_may_not_see(admin: Api, agent: Api) -> None:
    deal = (await targets(admin))["deals"]
    note = await admin.post(f"/api/v1/deals/{deal['id']}/notes", {"text": "секрет"}, expect=201)
    await agent.get(f"/api/v1/deals/{deal['id']}/timeline", expect=404)
    await agent.post(f"/api/v1/deals/{deal['id']}/notes", {"text": "x"}, expect=404)
    await agent.patch(f"/api/v1/timeline/{note['id']}", {"pinned": True}, expect=404)
