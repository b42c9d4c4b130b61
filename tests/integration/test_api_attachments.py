"""Files on timeline entries over HTTP: upload (multipart), download with the entry's access rule."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from aiohttp import FormData, web
from aiohttp.test_utils import TestClient

from hub.crm.attachments import content_type_of, sanitize_filename
from hub.web.keys import CONFIG
from tests.integration.conftest import MAX_BODY, Api


async def deal_with_note(owner: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    client = await owner.post("/api/v1/clients", {"name": "ООО «Файлы»"}, expect=201)
    deal = await owner.post("/api/v1/deals", {"title": "Поставка", "client_id": client["id"]}, expect=201)
    note = await owner.post(f"/api/v1/deals/{deal['id']}/notes", {"text": "Договор во вложении"}, expect=201)
    return deal, note


async def upload(client: TestClient, api: Api, entry_id: int, data: bytes, filename: str,
                 content_type: str = "application/pdf", expect: int = 201) -> Any:
    form = FormData()
    form.add_field("file", data, filename=filename, content_type=content_type)
    async with client.post(f"/api/v1/timeline/{entry_id}/attachments", data=form,
                           headers={"Authorization": f"Bearer {api.token}"}) as response:
        body = await response.json()
        assert response.status == expect, body
        return body


async def test_upload_then_download_with_its_name_type_and_bytes(client: TestClient, app: web.Application,
                                                                 agent: Api) -> None:
    deal, note = await deal_with_note(agent)
    data = b"%PDF-1.4 \x00\x01 contract"
    created = await upload(client, agent, note["id"], data, "../../Договор №5.pdf")
    assert created["filename"] == "Договор №5.pdf" and created["size"] == len(data)
    assert created["content_type"] == "application/pdf" and created["entry_id"] == note["id"]
    assert created["sha256"] == hashlib.sha256(data).hexdigest()
    stored = Path(app[CONFIG].server.attachments_dir) / created["sha256"][:2] / created["sha256"]
    assert stored.read_bytes() == data

    async with client.get(created["url"], headers={"Authorization": f"Bearer {agent.token}"}) as response:
        assert response.status == 200
        assert await response.read() == data
        assert response.headers["Content-Type"] == "application/pdf"
        disposition = response.headers["Content-Disposition"]
        assert disposition.startswith("attachment;") and "filename*=UTF-8''" in disposition
        assert "%D0%94%D0%BE%D0%B3%D0%BE%D0%B2%D0%BE%D1%80" in disposition and "/" not in disposition

    timeline = await agent.get(f"/api/v1/deals/{deal['id']}/timeline", params={"kind": "note"})
    assert timeline["items"][0]["attachments"] == [
        {"id": created["id"], "filename": "Договор №5.pdf", "content_type": "application/pdf",
         "size": len(data)}]


async def test_the_same_bytes_are_stored_once(client: TestClient, app: web.Application, agent: Api) -> None:
    _, note = await deal_with_note(agent)
    first = await upload(client, agent, note["id"], b"same", "a.txt", "text/plain")
    second = await upload(client, agent, note["id"], b"same", "b.txt", "text/plain")
    assert first["id"] != second["id"] and first["sha256"] == second["sha256"]
    assert len(os.listdir(app[CONFIG].server.attachments_dir)) == 1  # one folder with one file
    assert len(os.listdir(Path(app[CONFIG].server.attachments_dir) / first["sha256"][:2])) == 1


async def test_download_follows_the_deal_access_rule(client: TestClient, agent: Api, agent2: Api,
                                                     manager: Api) -> None:
    _, note = await deal_with_note(agent)
    created = await upload(client, agent, note["id"], b"secret", "s.txt", "text/plain")
    await agent2.get(created["url"], expect=404)
    await agent2.get("/api/v1/attachments/999999", expect=404)
    assert (await manager.call("GET", created["url"], expect=200)) is None  # not JSON: the bytes
    await upload(client, agent2, note["id"], b"x", "x.txt", expect=404)  # cannot see the entry


async def test_bad_uploads_are_refused(client: TestClient, agent: Api, manager: Api) -> None:
    _, note = await deal_with_note(agent)
    body = await upload(client, agent, note["id"], b"", "empty.txt", expect=422)
    assert body["error"]["fields"] == {"file": "is empty"}
    await upload(client, agent, note["id"], b"x" * (MAX_BODY + 10), "big.bin", expect=413)
    await agent.post(f"/api/v1/timeline/{note['id']}/attachments", {"file": "x"}, expect=422)  # not multipart
    await upload(client, agent, 999999, b"x", "x.txt", expect=404)


async def test_unauthenticated_download_is_refused(client: TestClient, agent: Api) -> None:
    _, note = await deal_with_note(agent)
    created = await upload(client, agent, note["id"], b"1", "1.txt", "text/plain")
    async with client.get(created["url"]) as response:
        assert response.status == 401


def test_filenames_are_sanitised_and_types_checked() -> None:
    assert sanitize_filename("C:\\Users\\evil\\..\\a<b>.exe") == "a_b_.exe"
    assert sanitize_filename("../../etc/passwd") == "passwd"
    assert sanitize_filename("\x00\n") == "file" and sanitize_filename(None) == "file"
    assert sanitize_filename("..") == "file"
    long = sanitize_filename("я" * 500 + ".docx")
    assert len(long) == 200 and long.endswith(".docx")
    assert content_type_of("text/html; charset=utf-8", "a.html") == "text/html"
    assert content_type_of("nonsense", "photo.png") == "image/png"
    assert content_type_of(None, "noext") == "application/octet-stream"
