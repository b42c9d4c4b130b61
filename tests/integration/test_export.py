"""Lists as files (/api/v1/{clients|leads|deals|tasks|calls}/export): XLSX and CSV with the list's filters,
what the caller may see only, column names in the reader's language, times in the server's zone, every
page of a long list; the list pages link to the file with their current filter."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from openpyxl import load_workbook

from tests.integration.conftest import Api
from tests.integration.test_api_calls import config, end, recordings  # noqa: F401 (fixtures)
from tests.integration.test_web_pages import logged_in, page


async def download(api: Api, path: str, params: dict[str, str], status: int = 200) -> tuple[bytes, Any]:
    async with api.client.get(path, params=params, headers=api.auth()) as response:
        body = await response.read()
        assert response.status == status, body[:500]
        return body, response.headers


def sheet(body: bytes) -> list[list[Any]]:
    book = load_workbook(io.BytesIO(body), read_only=True)
    return [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]


def table(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf")  # the byte-order mark Excel needs to read UTF-8
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))


async def test_clients_and_deals_as_xlsx_and_csv_with_the_filter_and_access(
        agent: Api, manager: Api) -> None:
    mine = await agent.post("/api/v1/clients", {"name": "ООО Ромашка", "phones": ["+79161234567"],
                                                "tags": ["опт"], "manager_id": agent.id}, expect=201)
    await agent.post("/api/v1/clients", {"name": "ИП Васильков", "manager_id": agent.id}, expect=201)
    await manager.post("/api/v1/clients", {"name": "ООО Чужая", "manager_id": manager.id}, expect=201)
    await agent.post("/api/v1/deals", {"title": "Поставка бумаги", "client_id": mine["id"], "amount": 1500.5},
                     expect=201)

    body, headers = await download(agent, "/api/v1/clients/export", {"format": "xlsx"})
    assert headers["Content-Type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
    assert 'attachment; filename="clients-' in headers["Content-Disposition"]
    rows = sheet(body)
    assert rows[0][:5] == ["Название", "Тип", "ИНН", "КПП", "Телефоны"]
    assert sorted(r[0] for r in rows[1:]) == ["ИП Васильков", "ООО Ромашка"]  # not the manager's own client
    romashka = next(r for r in rows[1:] if r[0] == "ООО Ромашка")
    assert romashka[4] == "+79161234567" and "опт" in romashka and isinstance(romashka[-1], datetime)

    body, headers = await download(agent, "/api/v1/clients/export", {"format": "csv", "q": "ромаш"})
    assert headers["Content-Type"].startswith("text/csv")
    assert [r[0] for r in table(body)] == ["Название", "ООО Ромашка"]

    body, _ = await download(manager, "/api/v1/deals/export", {"format": "xlsx"})
    deals = sheet(body)
    assert deals[1][0] == "Поставка бумаги" and deals[1][1] == "ООО Ромашка" and deals[1][3] == 1500.5
    await download(agent, "/api/v1/deals/export", {"format": "pdf"}, status=422)


async def test_a_long_list_comes_whole_and_calls_keep_their_filter(app: web.Application, agent: Api) -> None:
    for i in range(230):  # more than one page of the list (200)
        await agent.post("/api/v1/tasks", {"subject": f"Задача {i:03d}", "assignee_id": agent.id}, expect=201)
    body, _ = await download(agent, "/api/v1/tasks/export", {"format": "csv", "filter": "open"})
    assert len(table(body)) == 231
    await end(app, "c1", "+79161110001")
    await end(app, "c2", "+79161110002", "missed", minutes=5)
    body, _ = await download(agent, "/api/v1/calls/export", {"format": "xlsx", "status": "missed,abandoned"})
    calls = sheet(body)
    assert len(calls) == 2 and calls[1][2] == "пропущен" and calls[1][1] == "Входящий звонок"
    assert calls[1][0] == datetime(2030, 6, 15, 12, 5)  # 09:05 UTC in Moscow


async def test_the_list_pages_link_to_their_file(client: TestClient, agent: Api) -> None:
    await agent.post("/api/v1/clients", {"name": "ООО Ромашка", "manager_id": agent.id}, expect=201)
    await logged_in(client, agent)
    clients = await page(client, "/clients?q=ромаш")
    assert 'href="/api/v1/clients/export?q=%D1%80%D0%BE%D0%BC%D0%B0%D1%88&amp;format=xlsx"' in clients
    assert "format=csv" in clients and "Экспорт:" in clients
    assert "/api/v1/deals/export?format=xlsx" in await page(client, "/deals/list")
    assert "/api/v1/leads/export?unsorted=true&amp;format=xlsx" in await page(client, "/leads?show=unsorted")
    assert "/api/v1/tasks/export?filter=open&amp;format=xlsx" in await page(client, "/tasks")
    async with client.get("/api/v1/clients/export?format=csv&q=ромаш") as response:  # the page's session
        assert response.status == 200 and "ООО Ромашка" in (await response.read()).decode("utf-8-sig")
