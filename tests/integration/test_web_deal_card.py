"""The deal card /deals/{id} and the timeline piece over HTTP, on each test database."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import FormData, web
from aiohttp.test_utils import TestClient

from hub.crm import timeline
from hub.web.keys import DB
from tests.integration.conftest import Api
from tests.integration.test_web_pages import logged_in
from tests.integration.test_web_pages import page as raw_page

HTMX = {"HX-Request": "true"}


def plain(text: str) -> str:
    """Russian number formats use (narrow) no-break spaces; the asserts write plain ones."""
    return text.replace("\xa0", " ").replace("\u202f", " ")


async def page(client: TestClient, path: str, status: int = 200, **kw: Any) -> str:
    return plain(await raw_page(client, path, status, **kw))


async def make_deal(api: Api, **extra: Any) -> dict[str, Any]:
    client = await api.post("/api/v1/clients", {"name": "ООО «Ромашка»", "phones": ["+7 916 123-45-67"],
                                                "emails": ["info@romashka.ru"]}, expect=201)
    return await api.post("/api/v1/deals", {"title": "Поставка бумаги", "client_id": client["id"],
                                            "amount": 1234567, **extra}, expect=201)


async def switch(client: TestClient, api: Api) -> str:
    """Log in as another user in the same client (a fresh cookie jar)."""
    client.session.cookie_jar.clear()
    return await logged_in(client, api)


async def post(client: TestClient, path: str, data: dict[str, Any] | FormData, csrf: str, *,
               htmx: bool = True, status: int = 200) -> tuple[str, Any]:
    headers = {"X-CSRF-Token": csrf, **(HTMX if htmx else {})}
    async with client.post(path, data=data, headers=headers, allow_redirects=False) as response:
        text = plain(await response.text())
        assert response.status == status, f"{path}: {response.status} {text[:1500]}"
        return text, response.headers


async def test_card_shows_main_info_stage_bar_composer_and_the_move_in_the_timeline(
        client: TestClient, agent: Api) -> None:
    deal = await make_deal(agent, tags=["опт"], utm_source="yandex")
    pipeline = await agent.get(f"/api/v1/pipelines/{deal['pipeline_id']}")
    second = pipeline["stages"][1]
    await agent.post(f"/api/v1/deals/{deal['id']}/move", {
        "stage_id": second["id"], "result": "Клиент просил КП", "next_interaction_at": "2030-01-02T09:00:00Z",
        "next_interaction_note": "Позвонить после обеда"})
    await logged_in(client, agent)
    html = await page(client, f"/deals/{deal['id']}")
    assert "<title>Поставка бумаги — CRM Hub</title>" in html
    assert "1 234 567,00 ₽" in html and "ООО «Ромашка»" in html
    assert f'href="/clients/{deal["client_id"]}"' in html
    for stage in pipeline["stages"]:
        assert stage["name"] in html
    assert 'aria-current="step"' in html and f"?move={pipeline['stages'][2]['id']}" in html
    assert "опт" in html and "yandex" in html and "Иван Агентов" in html
    # the stage change, rendered from its payload in Russian
    assert re.search(r'class="tl-from">[^<]+</span>.*class="tl-to">' + re.escape(second["name"]), html, re.S)
    assert "Результат:" in html and "Клиент просил КП" in html
    assert "Следующее взаимодействие:" in html and "02.01.2030 12:00" in html
    assert "Позвонить после обеда" in html
    # the composer offers the channels the client has (SMS to the phone, e-mail to the address with a
    # Subject field shown only for it; Telegram off, with the reason)
    assert re.search(r'<input type="radio" name="channel" value="sms" checked>', html)
    assert re.search(r'<input type="radio" name="channel" value="email">', html)
    assert "+79161234567" in html and '<span class="muted">info@romashka.ru</span>' in html
    assert re.search(r'<div class="composer-subject" data-subject-row hidden>', html)
    assert re.search(r'<input type="radio" name="channel" value="telegram" disabled>', html)
    assert "Нет Telegram." in html
    assert re.search(r'<textarea[^>]*name="text"', html) and not re.search(r"<textarea[^>]*disabled", html)
    assert "/static/deal_card.css" in html and "/static/deal_card.js" in html


async def test_text_from_users_is_escaped(client: TestClient, agent: Api) -> None:
    deal = await make_deal(agent)
    await agent.patch(f"/api/v1/deals/{deal['id']}", {"title": "<script>alert(1)</script>"})
    await agent.post(f"/api/v1/deals/{deal['id']}/notes", {"text": "<img src=x onerror=alert(2)>"},
                     expect=201)
    await logged_in(client, agent)
    html = await page(client, f"/deals/{deal['id']}")
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(2)&gt;" in html


async def test_labels_and_field_names_from_users_are_escaped(client: TestClient, app: web.Application,
                                                             agent: Api) -> None:
    """Security finding 6: a label or a field name went through ``_()``, whose result is safe markup,
    so an admin's custom-field label and a field name in the URL were injected as HTML."""
    from hub.crm.models import CustomField

    async with app[DB].transaction() as s:
        s.add(CustomField(entity="deal", key="note", label='<meta http-equiv="refresh" content="0;url=/x">'
                          "<b>Примечание</b>", type="text", position=1))
    deal = await make_deal(agent)
    await logged_in(client, agent)
    html = await page(client, f"/deals/{deal['id']}")
    assert "<meta http-equiv" not in html and "<b>Примечание" not in html
    assert "&lt;b&gt;Примечание&lt;/b&gt;" in html
    path = f"/deals/{deal['id']}/fields/custom.<meta http-equiv=refresh content=0;url=//evil.example>"
    async with client.get(path, headers=HTMX) as response:
        reflected = await response.text()
    assert "<meta http-equiv=refresh" not in reflected and "evil.example>" not in reflected
    assert "Сумма" in await page(client, f"/deals/{deal['id']}")  # the catalogue's own texts still translate


async def test_access_unknown_and_foreign_deals(client: TestClient, agent: Api, agent2: Api,
                                                manager: Api) -> None:
    deal = await make_deal(agent)
    await logged_in(client, agent2)
    await page(client, f"/deals/{deal['id']}", 404)
    await page(client, "/deals/999999", 404)
    await page(client, f"/timeline/deals/{deal['id']}", 404)
    await switch(client, manager)
    html = await page(client, f"/deals/{deal['id']}")
    assert "Поставка бумаги" in html and 'class="df-edit"' in html  # a manager may edit


async def test_edit_in_place_saves_through_the_service_and_shows_errors_next_to_the_field(
        client: TestClient, agent: Api, agent2: Api) -> None:
    deal = await make_deal(agent)
    csrf = await logged_in(client, agent)
    form = await page(client, f"/deals/{deal['id']}/fields/amount?edit=1", headers=HTMX)
    assert 'name="amount"' in form and 'value="1234567"' in form

    html, _ = await post(client, f"/deals/{deal['id']}/fields/amount", {"amount": "2 500,50"}, csrf)
    assert "2 500,50 ₽" in html and "<form" not in html
    assert (await agent.get(f"/api/v1/deals/{deal['id']}"))["amount"] == 2500.5

    html, _ = await post(client, f"/deals/{deal['id']}/fields/amount", {"amount": "много"}, csrf)
    assert "<form" in html and "Введите число." in html and 'aria-invalid="true"' in html
    html, _ = await post(client, f"/deals/{deal['id']}/fields/title", {"title": ""}, csrf)
    assert "Обязательное поле." in html

    html, _ = await post(client, f"/deals/{deal['id']}/fields/tags", {"tags": "опт, срочно"}, csrf)
    assert "опт" in html and "срочно" in html
    html, _ = await post(client, f"/deals/{deal['id']}/fields/next", {
        "next_interaction_at": "2030-05-06T10:30", "next_interaction_note": "Встреча в офисе"}, csrf)
    assert "06.05.2030 10:30" in html and "Встреча в офисе" in html
    assert (await agent.get(f"/api/v1/deals/{deal['id']}"))["next_interaction_at"] == "2030-05-06T07:30:00Z"

    users = await page(client, f"/deals/{deal['id']}/fields/responsible?edit=1", headers=HTMX)
    assert "Пётр Второв" in users
    html, _ = await post(client, f"/deals/{deal['id']}/fields/responsible",
                         {"responsible_id": str(agent2.id)}, csrf)
    assert "Пётр Второв" in html

    # the agent handed the deal over: they no longer see it; agent2 edits with a plain form
    csrf2 = await switch(client, agent2)
    _, headers = await post(client, f"/deals/{deal['id']}/fields/source", {"source": "выставка"}, csrf2,
                            htmx=False, status=303)
    assert headers["Location"] == f"/deals/{deal['id']}"
    html = await page(client, f"/deals/{deal['id']}?edit=amount")
    assert 'name="amount"' in html and "выставка" in html
    await page(client, f"/deals/{deal['id']}/fields/nothing", 404)


async def test_move_dialog_needs_a_loss_reason_for_lost_and_writes_the_stage_change(
        client: TestClient, agent: Api) -> None:
    deal = await make_deal(agent)
    pipeline = await agent.get(f"/api/v1/pipelines/{deal['pipeline_id']}")
    lost = next(st for st in pipeline["stages"] if st["kind"] == "lost")
    csrf = await logged_in(client, agent)
    html = await page(client, f"/deals/{deal['id']}?move={lost['id']}")
    assert 'id="move-dialog"' in html and "Почему сделка проиграна?" in html and " open data-open" in html

    html, _ = await post(client, f"/deals/{deal['id']}/move",
                         {"stage_id": str(lost["id"]), "result": "Дорого"}, csrf)
    assert "Укажите, почему сделка проиграна." in html and ">Дорого</textarea>" in html
    html, headers = await post(client, f"/deals/{deal['id']}/move", {
        "stage_id": str(lost["id"]), "result": "Дорого", "loss_reason_text": "Ушли к конкуренту"}, csrf)
    assert headers["HX-Trigger"] == "timeline-refresh"
    assert "Ушли к конкуренту" in html
    box = await page(client, f"/timeline/deals/{deal['id']}?tl=stages", headers=HTMX)
    assert "Причина проигрыша:" in box and "Ушли к конкуренту" in box and "Дорого" in box

    _, headers = await post(client, f"/deals/{deal['id']}/move",
                            {"stage_id": str(pipeline["stages"][0]["id"])}, csrf, htmx=False, status=303)
    assert headers["Location"] == f"/deals/{deal['id']}"


async def test_timeline_filters_pinned_on_top_paging_notes_with_a_file_and_pin(
        client: TestClient, app: web.Application, agent: Api) -> None:
    deal = await make_deal(agent)
    pipeline = await agent.get(f"/api/v1/pipelines/{deal['pipeline_id']}")
    await agent.post(f"/api/v1/deals/{deal['id']}/move", {"stage_id": pipeline["stages"][1]["id"],
                                                         "result": "Созвонились"})
    notes = [await agent.post(f"/api/v1/deals/{deal['id']}/notes", {"text": f"Заметка {i}"}, expect=201)
             for i in range(35)]
    async with app[DB].transaction() as s:
        await timeline.add_entry(s, kind="call", direction="in", deal_id=deal["id"],
                                 payload={"recording_url": "/recordings/1.mp3", "duration": 75})
        await timeline.add_entry(s, kind="call", direction="out", deal_id=deal["id"], payload={})
    csrf = await logged_in(client, agent)
    base = f"/timeline/deals/{deal['id']}"

    html = await page(client, f"/deals/{deal['id']}")
    assert html.count('class="tl-entry') == 30 and "Показать ещё" in html
    assert '<audio class="tl-audio" controls preload="metadata" src="/recordings/1.mp3">' in html
    assert "Записи разговора нет." in html and "1:15" in html
    more = re.search(r'hx-get="(/timeline/deals/\d+\?tl=all&amp;cursor=[^"]+)"', html)
    assert more is not None
    rest = await page(client, more.group(1).replace("&amp;", "&"), headers=HTMX)
    assert rest.count('class="tl-entry') == 8 and "Показать ещё" not in rest and "tl-chips" not in rest
    assert 'name="csrf_token" value=""' not in rest

    only_notes = await page(client, f"{base}?tl=notes", headers=HTMX)
    assert "Созвонились" not in only_notes and "Заметка 34" in only_notes and "tl-call" not in only_notes
    only_stages = await page(client, f"{base}?tl=stages", headers=HTMX)
    assert "Созвонились" in only_stages and "Заметка" not in only_stages
    assert "Таких записей пока нет." in await page(client, f"{base}?tl=emails", headers=HTMX)
    calls = await page(client, f"{base}?tl=calls", headers=HTMX)
    assert calls.count('class="tl-entry') == 2

    box, _ = await post(client, f"{base}/entries/{notes[0]['id']}/pin", {"pinned": "1"}, csrf)
    pinned = box.index('class="tl-pinned"')
    assert pinned < box.index("Заметка 0<") < box.index("tl-stream")
    assert "Открепить" in box
    box, _ = await post(client, f"{base}/entries/{notes[0]['id']}/pin", {"pinned": "0"}, csrf)
    assert 'class="tl-pinned"' not in box

    form = FormData()
    form.add_field("text", "Счёт во вложении")
    form.add_field("file", b"%PDF-1.4 invoice", filename="Счёт 17.pdf", content_type="application/pdf")
    box, headers = await post(client, f"{base}/notes", form, csrf)
    assert headers["HX-Trigger"] == "note-added" and "Счёт во вложении" in box and "Счёт 17.pdf" in box
    link = re.search(r'href="(/api/v1/attachments/\d+)"', box)
    assert link is not None
    async with client.get(link.group(1)) as response:
        assert response.status == 200 and await response.read() == b"%PDF-1.4 invoice"

    text, headers = await post(client, f"{base}/notes", FormData({"text": "  "}), csrf)
    assert headers["HX-Retarget"] == f"#note-form-deal-{deal['id']}" and "field-error" in text
    _, headers = await post(client, f"{base}/notes", FormData({"text": "Без JS"}), csrf, htmx=False,
                            status=303)
    assert headers["Location"] == f"/deals/{deal['id']}"
    await page(client, f"/timeline/deals/{deal['id']}?tl=whatever", headers=HTMX)  # unknown filter: all
    await page(client, "/timeline/things/1", 404)


async def test_custom_fields_show_and_edit_in_place(client: TestClient, app: web.Application,
                                                    agent: Api) -> None:
    from hub.crm.models import CustomField

    async with app[DB].transaction() as s:
        s.add_all([CustomField(entity="deal", key="volume", label="Объём, т", type="number", position=1),
                   CustomField(entity="deal", key="delivery", label="Доставка", type="choice",
                               choices=["самовывоз", "курьер"], position=2),
                   CustomField(entity="deal", key="deadline", label="Срок", type="date", position=3)])
    deal = await make_deal(agent, custom={"volume": 12.5, "deadline": "2030-03-01"})
    csrf = await logged_in(client, agent)
    html = await page(client, f"/deals/{deal['id']}")
    assert "Объём, т" in html and "12,5" in html and "01.03.2030" in html and "Доставка" in html

    form = await page(client, f"/deals/{deal['id']}/fields/custom.delivery?edit=1", headers=HTMX)
    assert "<select" in form and "самовывоз" in form and "курьер" in form
    html, _ = await post(client, f"/deals/{deal['id']}/fields/custom.delivery", {"value": "курьер"}, csrf)
    assert "курьер" in html and "<form" not in html
    html, _ = await post(client, f"/deals/{deal['id']}/fields/custom.volume", {"value": "много"}, csrf)
    assert "Введите число." in html
    html, _ = await post(client, f"/deals/{deal['id']}/fields/custom.volume", {"value": "7,25"}, csrf)
    assert "7,25" in html
    html, _ = await post(client, f"/deals/{deal['id']}/fields/custom.deadline", {"value": ""}, csrf)
    assert "—" in html
    custom = (await agent.get(f"/api/v1/deals/{deal['id']}"))["custom"]
    assert custom == {"volume": 7.25, "delivery": "курьер"}


async def test_write_next_to_an_address_opens_the_composer_on_that_channel(client: TestClient,
                                                                          agent: Api) -> None:
    deal = await make_deal(agent)
    lead = await agent.post("/api/v1/leads", {"name": "Анна", "emails": ["anna@mail.ru"],
                                              "phones": ["+7 921 456-78-12"]}, expect=201)
    await logged_in(client, agent)
    card = await raw_page(client, f"/clients/{deal['client_id']}")
    write = f'href="/clients/{deal["client_id"]}?tab=timeline&amp;write=email#timeline"'
    assert write in card and "arrives with the e-mail channel" not in card
    timeline_tab = await raw_page(client, f"/clients/{deal['client_id']}?tab=timeline&write=email")
    assert re.search(r'<input type="radio" name="channel" value="email" checked>', timeline_tab)
    assert re.search(r'<input type="radio" name="channel" value="sms">', timeline_tab)
    lead_card = await raw_page(client, f"/leads/{lead['id']}")
    assert f'href="/leads/{lead["id"]}?write=email#timeline"' in lead_card.replace("&amp;", "&")
    asked = await raw_page(client, f"/leads/{lead['id']}?write=email")
    assert re.search(r'<input type="radio" name="channel" value="email" checked>', asked)
    # a channel the person cannot be written on is not forced
    unknown = await raw_page(client, f"/leads/{lead['id']}?write=telegram")
    assert re.search(r'<input type="radio" name="channel" value="sms" checked>', unknown)


async def test_the_move_dialog_asks_the_result_going_forward_and_plans_nothing_for_a_closed_deal(
        client: TestClient, agent: Api) -> None:
    deal = await make_deal(agent)
    stages = (await agent.get(f"/api/v1/pipelines/{deal['pipeline_id']}"))["stages"]
    won = next(st for st in stages if st["kind"] == "won")
    csrf = await logged_in(client, agent)
    card = await page(client, f"/deals/{deal['id']}")
    assert f'data-move-stage="{stages[1]["id"]}" data-move-kind="active"' in card
    assert re.search(rf'data-move-stage="{stages[1]["id"]}"[^>]* data-move-forward', card)
    dialog = await page(client, f"/deals/{deal['id']}?move={won['id']}")
    assert re.search(r'<textarea name="result"[^>]* required', dialog)
    assert re.search(r'<fieldset class="move-next" data-move-next hidden>', dialog)

    move = f"/deals/{deal['id']}/move"
    second, first = str(stages[1]["id"]), str(stages[0]["id"])
    html, _ = await post(client, move, {"stage_id": second, "result": ""}, csrf)
    assert "Обязательное поле." in html
    assert (await agent.get(f"/api/v1/deals/{deal['id']}"))["stage_id"] == deal["stage_id"]
    html, _ = await post(client, move, {"stage_id": second, "result": "Созвонились",
                                        "next_interaction_at": "2020-03-01T10:00"}, csrf)
    assert "Это время уже прошло: выберите более позднее." in html
    await post(client, move, {"stage_id": second, "result": "Созвонились"}, csrf)
    await post(client, move, {"stage_id": first, "result": ""}, csrf)  # back a step: nothing to report
    assert (await agent.get(f"/api/v1/deals/{deal['id']}"))["stage_id"] == stages[0]["id"]
