"""One language at a time: a user who reads English sees no Russian on any page but the data people
typed (here all in Latin letters), the names of the pipelines, stages and loss reasons the hub was
installed with and the subjects of the tasks it wrote (a callback's «Перезвонить: …», in the hub's
language): data too, which people rename and edit. A Russian reader sees call texts and channel
states in Russian."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from hub.crm.models import Deal, LossReason, Pipeline, Stage, Task, TimelineEntry, User
from hub.web.keys import DB
from tests.integration.conftest import Api, MakeApi
from tests.integration.test_api_calls import config, end, recordings  # noqa: F401 (fixtures)
from tests.integration.test_web_pages import logged_in, page

CYRILLIC = re.compile(r"[А-Яа-яЁё]+(?:[ -][А-Яа-яЁё]+)*")
OWN_NAMES = {"Русский"}  # a language is offered by its own name
SHOWN_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")


class VisibleText(HTMLParser):
    """The text a reader sees or hears: text nodes and the attributes shown as tooltips and read by
    screen readers; not scripts, styles or templates (the script texts are checked on their own)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.hidden += 1
        for name, value in attrs:
            if name in SHOWN_ATTRIBUTES and value:
                self.parts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self.hidden:
            self.hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self.hidden and data.strip():
            self.parts.append(data.strip())


def russian_words(html: str, data_names: set[str]) -> set[str]:
    parser = VisibleText()
    parser.feed(html)
    text = "\n".join(parser.parts)
    for name in sorted(data_names, key=len, reverse=True):
        text = text.replace(name, "")
    script_texts = re.search(r'<script type="application/json" id="script-texts">(.*?)</script>', html, re.S)
    if script_texts:
        text += "\n" + script_texts.group(1).encode().decode("unicode_escape")
    return set(CYRILLIC.findall(text)) - OWN_NAMES


async def installed_names(app: web.Application) -> set[str]:
    async with app[DB].reading() as s:
        names = [*(await s.scalars(select(Pipeline.name))), *(await s.scalars(select(Stage.name))),
                 *(await s.scalars(select(LossReason.name))), *(await s.scalars(select(Task.subject)))]
    return set(names)


async def stored_words(app: web.Application) -> set[str]:
    async with app[DB].reading() as s:
        texts = [*(await s.scalars(select(TimelineEntry.text))), *(await s.scalars(select(Task.description)))]
    return {word for text in texts for word in re.findall(r"[А-Яа-яЁё]+", text or "")}


async def a_working_day(app: web.Application, boss: Api) -> dict[str, Any]:
    """Clients, a lead, a deal, a task, calls (answered, missed: a bell item) typed in Latin letters."""
    client = await boss.post("/api/v1/clients", {"name": "Northwind Trading", "phones": ["+79161110001"],
                                                 "emails": ["orders@northwind.example"],
                                                 "manager_id": boss.id}, expect=201)
    lead = await boss.post("/api/v1/leads", {"name": "John Smith", "phones": ["+79161110009"],
                                             "source": "telegram"}, expect=201)
    soon = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    deal = await boss.post("/api/v1/deals", {"title": "Paper supply", "client_id": client["id"],
                                             "amount": 125000, "next_interaction_at": soon,
                                             "next_interaction_note": "Send the offer"}, expect=201)
    task = await boss.post("/api/v1/tasks", {"subject": "Call back about paper", "due_at": soon,
                                             "assignee_id": boss.id, "client_id": client["id"]}, expect=201)
    async with app[DB].transaction() as s:  # overdue: planned earlier, the day has passed
        await s.execute(update(Deal).where(Deal.id == deal["id"])
                        .values(next_interaction_at=datetime.now(UTC) - timedelta(days=2)))
    await end(app, "c1", "+79161110001", recording="in-101.wav")
    await end(app, "c2", "+79161110001", "missed", minutes=5)
    await end(app, "c3", "+79161110001", direction="outbound", minutes=9)
    return {"client": client, "lead": lead, "deal": deal, "task": task}


async def test_an_english_reader_sees_no_russian(client: TestClient, app: web.Application,
                                                 make_api: MakeApi) -> None:
    boss = await make_api("boss", "admin", "Alex Boss", ["101"])
    async with app[DB].transaction() as s:
        await s.execute(update(User).where(User.id == boss.id).values(language="en"))
    day = await a_working_day(app, boss)
    await logged_in(client, boss)
    data_names = await installed_names(app)
    paths = ["/", "/clients", f"/clients/{day['client']['id']}", "/leads", f"/leads/{day['lead']['id']}",
             "/deals", "/deals/list", f"/deals/{day['deal']['id']}", "/tasks", f"/tasks/{day['task']['id']}",
             "/tasks/new", "/calls", "/inbox", "/reports/funnel", "/reports/widgets", "/settings/users",
             f"/settings/users/{boss.id}", "/settings/loss-reasons", "/settings/fields",
             "/settings/tags", "/settings/access", "/settings/audit", "/bell",
             f"/timeline/deals/{day['deal']['id']}", f"/timeline/clients/{day['client']['id']}",
             f"/deals/board/card/{day['deal']['id']}?pipeline={day['deal']['pipeline_id']}",
             f"/deals/{day['deal']['id']}/history", f"/clients/{day['client']['id']}?tab=history",
             f"/leads/{day['lead']['id']}/history", f"/tasks/{day['task']['id']}/history",
             "/search?q=Northwind", "/search/suggest?q=Paper", "/search?q=nothing-like-it", "/deals/new",
             f"/deals/new?client={day['client']['id']}", "/deals/new/owners?q=North",
             "/clients/999999"]
    found = {path: words for path in paths
             if (words := russian_words(await page(client, path, 404 if path == "/clients/999999" else 200),
                                        data_names))}
    # The search shows what is stored as it is stored: a call's or a callback task's text, written in
    # the hub's language for everyone (data, like a name), no other Russian word.
    stored = await stored_words(app)
    for path in [p for p in found if p.startswith("/search")]:
        found[path] = {w for w in found[path] if not set(w.split()) <= stored}
    assert {path: words for path, words in found.items() if words} == {}
    assert "Overdue" in await page(client, "/deals")
    deal_page = await page(client, f"/deals/{day['deal']['id']}")
    assert "Incoming call from Northwind Trading" in deal_page
    assert "Outgoing call to Northwind Trading" in deal_page
    assert "Missed call from Northwind Trading" in await page(client, "/bell")


async def test_a_russian_reader_reads_calls_and_channels_in_russian(client: TestClient, app: web.Application,
                                                                   make_api: MakeApi) -> None:
    boss = await make_api("boss", "admin", "Алексей Боссов", ["101"])
    day = await a_working_day(app, boss)
    await logged_in(client, boss)
    deal_page = await page(client, f"/deals/{day['deal']['id']}")
    assert "Входящий звонок от Northwind Trading" in deal_page
    assert "Исходящий звонок: Northwind Trading" in deal_page
    assert "Incoming call" not in deal_page and "(missed)" not in deal_page
    bell = await page(client, "/bell")
    assert "Пропущенный звонок от Northwind Trading" in bell and "Missed call from" not in bell
    timeline = await boss.get(f"/api/v1/deals/{day['deal']['id']}/timeline")
    texts = [e["text"] for e in timeline["items"] if e["kind"] == "call"]
    assert texts and all("звонок" in t for t in texts)  # the API's text: the hub's language
