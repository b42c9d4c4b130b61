"""The client and lead pages over HTTP: lists with search, filters and paging, the forms with errors
next to their fields, the client card's tabs, contact persons, deals, and converting a lead."""

from __future__ import annotations

import html as html_lib
import re

from aiohttp.test_utils import TestClient

from tests.integration.conftest import Api
from tests.integration.test_web_pages import logged_in, page


async def post_form(client: TestClient, path: str, data: dict[str, str], csrf: str, *,
                    status: int = 303) -> tuple[str, str]:
    """POST a page's form; ``(Location, body)``."""
    async with client.post(path, data={**data, "csrf_token": csrf}, allow_redirects=False) as response:
        text = await response.text()
        assert response.status == status, f"{path}: {response.status} {text[:1500]}"
        return response.headers.get("Location", ""), text


def field_error(text: str, prefix: str, name: str) -> str:
    found = re.search(rf'<p class="field-error" id="{prefix}err-{name}">(.*?)</p>', text, re.S)
    assert found, f"no error next to {name}"
    return html_lib.unescape(found.group(1))


async def test_client_list_searches_by_phone_in_any_format_and_filters(client: TestClient, agent: Api,
                                                                        agent2: Api) -> None:
    mine = await agent.post("/api/v1/clients", {
        "name": "ООО «Ромашка»", "phones": ["+7 916 123-45-67"], "emails": ["office@romashka.ru"],
        "inn": "7707083893", "region": "Москва", "tags": ["VIP"]}, expect=201)
    await agent.post("/api/v1/clients", {"name": "ИП Лютиков", "region": "Казань", "kind": "person"},
                     expect=201)
    await agent2.post("/api/v1/clients", {"name": "Чужой клиент"}, expect=201)
    await logged_in(client, agent)

    listing = await page(client, "/clients")
    assert "ООО «Ромашка»" in listing and "ИП Лютиков" in listing
    assert "Чужой клиент" not in listing  # agents see their own clients only
    assert "+7 916 123-45-67" in listing and 'aria-current="page">Клиенты' in listing

    for q in ("8 (916) 123-45-67", "9161234567", "+79161234567", "office@romashka.ru", "770708", "ромашка"):
        found = await page(client, "/clients?" + _query(q=q))
        assert f'href="/clients/{mine["id"]}"' in found, q
        assert "ИП Лютиков" not in found, q
    assert "Подходящих клиентов нет" in await page(client, "/clients?q=нет+такого")

    assert "ИП Лютиков" not in await page(client, "/clients?tag=VIP")
    by_region = await page(client, "/clients?" + _query(region="Казань"))
    assert "ИП Лютиков" in by_region and "Ромашка" not in by_region
    assert "Ромашка" in await page(client, f"/clients?manager={agent.id}")
    assert "Ромашка" not in await page(client, f"/clients?manager={agent2.id}")


def _query(**params: str) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


async def test_client_list_pages_with_a_cursor_and_htmx_gets_only_the_rows(client: TestClient,
                                                                          agent: Api) -> None:
    for n in range(30):
        await agent.post("/api/v1/clients", {"name": f"Клиент {n:02d}"}, expect=201)
    await logged_in(client, agent)
    first = await page(client, "/clients")
    assert "Клиент 29" in first and "Клиент 04" not in first
    more = re.search(r'hx-get="(/clients\?cursor=[^"]+)"', first)
    assert more, "a 'show more' link"
    fragment = await page(client, html_lib.unescape(more.group(1)), headers={"HX-Request": "true"})
    assert "<html" not in fragment and "Клиент 04" in fragment and "Клиент 29" not in fragment
    assert "Показать ещё" not in fragment  # the last page
    # Without htmx the same link is a whole page.
    assert "<html" in await page(client, html_lib.unescape(more.group(1)))


async def test_new_client_form_shows_errors_next_to_fields_then_redirects(client: TestClient,
                                                                          agent: Api) -> None:
    csrf = await logged_in(client, agent)
    _, text = await post_form(client, "/clients", {
        "name": "", "kind": "company", "inn": "1234567890", "phones": "8 (916) 123-45-67, 12",
        "emails": "not-an-email"}, csrf, status=422)
    assert field_error(text, "new-", "name") == "Заполните это поле."
    assert field_error(text, "new-", "inn") == "Не сходится контрольная цифра: проверьте, нет ли опечатки."
    assert field_error(text, "new-", "phones") == "«12» — не номер телефона."
    assert field_error(text, "new-", "emails") == "«not-an-email» — не адрес e-mail."
    assert 'value="8 (916) 123-45-67, 12"' in text  # what was typed stays
    assert "Клиент не сохранён" in text and " open>" in text

    location, _ = await post_form(client, "/clients", {
        "name": "ООО «Вектор»", "kind": "company", "inn": "7707083893", "kpp": "773601001",
        "phones": "8 (916) 765-43-21", "emails": "info@vector.ru", "telegram": "@vector_ru",
        "manager_id": str(agent.id), "tags": "Опт, VIP"}, csrf)
    assert re.fullmatch(r"/clients/\d+", location)
    created = await agent.get("/api/v1" + location)
    assert created["phones"] == ["+79167654321"] and created["telegram"] == ["@vector_ru"]
    assert sorted(created["tags"]) == ["VIP", "Опт"] and created["kpp"] == "773601001"
    card = await page(client, location)
    assert "ООО «Вектор»" in card and "+7 916 765-43-21" in card and "Опт" in card


async def test_forms_need_the_csrf_token(client: TestClient, agent: Api) -> None:
    await logged_in(client, agent)
    async with client.post("/clients", data={"name": "X"}, allow_redirects=False) as response:
        assert response.status == 403
    assert (await agent.get("/api/v1/clients"))["items"] == []


async def test_card_tabs_escape_names_and_keep_channel_buttons_honest(client: TestClient, agent: Api,
                                                                      agent2: Api) -> None:
    hostile = "<script>alert(1)</script>"
    customer = await agent.post("/api/v1/clients", {
        "name": hostile, "phones": ["+79161234567"], "emails": ["a@b.ru"], "telegram": ["@someone"],
        "inn": "7707083893", "kpp": "773601001", "okpo": "00032537"}, expect=201)
    deal = await agent.post("/api/v1/deals", {"title": "Поставка", "client_id": customer["id"],
                                              "amount": 1234567}, expect=201)
    await agent.post("/api/v1/tasks", {"subject": "Перезвонить", "client_id": customer["id"],
                                       "assignee_id": agent.id}, expect=201)
    await agent.post(f"/api/v1/clients/{customer['id']}/notes", {"text": "Любит <b>жирный</b>"}, expect=201)
    await logged_in(client, agent)
    base = f"/clients/{customer['id']}"

    main = await page(client, base)
    assert hostile not in main and "&lt;script&gt;alert(1)&lt;/script&gt;" in main
    for tab in ("Основное", "Реквизиты", "Контактные лица", "Сделки", "Задачи", "Хронология"):
        assert f">{tab}" in main
    assert 'href="tel:+79161234567"' in main and "+7 916 123-45-67" in main
    call = re.search(r'<button[^>]*disabled[^>]*>Позвонить</button>', main)
    assert call and "Звонки из CRM появятся с подключением телефонии." in call.group(0)
    assert "Кнопка звонка заработает, когда подключат телефонию. Сообщение, написанное, пока его канал" \
           " не подключён, ждёт в очереди." in main
    # "Write" opens the timeline's composer on that channel (a message waits in the queue until
    # its channel is connected); the call button stays off until telephony is
    for channel, label in (("sms", "SMS"), ("email", "Написать"), ("telegram", "Написать")):
        assert f'href="{base}?tab=timeline&amp;write={channel}#timeline">{label}</a>' in main
    assert "Сообщение, написанное, пока его канал не подключён, ждёт в очереди." in main

    requisites = await page(client, base + "?tab=requisites")
    assert "7707083893" in requisites and "773601001" in requisites and "00032537" in requisites
    deals_tab = await page(client, base + "?tab=deals")
    assert f'href="/deals/{deal["id"]}"' in deals_tab and re.search(r"1\s234\s567,00\s₽", deals_tab)
    assert "Перезвонить" in await page(client, base + "?tab=tasks")
    timeline = await page(client, base + "?tab=timeline")
    assert "Любит &lt;b&gt;жирный&lt;/b&gt;" in timeline

    await page(client, f"/clients/{customer['id']}?tab=nonsense")  # falls back to the main tab
    await page(client, "/clients/999999", 404)
    client.session.cookie_jar.clear()
    await logged_in(client, agent2)
    await page(client, base, 404)  # not theirs


async def test_edit_main_fields_and_requisites(client: TestClient, agent: Api) -> None:
    customer = await agent.post("/api/v1/clients", {"name": "Старое имя", "phones": ["+79161234567"]},
                                expect=201)
    csrf = await logged_in(client, agent)
    base = f"/clients/{customer['id']}"
    location, _ = await post_form(client, base, {
        "section": "main", "name": "Новое имя", "kind": "person", "relationship_type": "partner",
        "manager_id": str(agent.id), "region": "Тула", "industry": "Металл",
        "phones": "+7 916 123-45-67, 8 495 123 45 67", "emails": "", "telegram": "", "tags": "Новый",
        "comment": "Важный"}, csrf)
    assert location == base + "?tab=main"
    updated = await agent.get(f"/api/v1/clients/{customer['id']}")
    assert updated["name"] == "Новое имя" and updated["kind"] == "person" and updated["region"] == "Тула"
    assert updated["phones"] == ["+79161234567", "+74951234567"] and updated["tags"] == ["Новый"]

    _, text = await post_form(client, base, {"section": "requisites", "full_name": "", "inn": "123",
                                             "kpp": "", "okpo": ""}, csrf, status=422)
    assert field_error(text, "req-", "inn") == "В ИНН 10 или 12 цифр."
    assert 'value="123"' in text
    await post_form(client, base, {"section": "requisites", "full_name": "ООО «Новое»",
                                   "inn": "7707083893", "kpp": "773601001", "okpo": ""}, csrf)
    assert (await agent.get(f"/api/v1/clients/{customer['id']}"))["inn"] == "7707083893"


async def test_contact_persons_add_edit_delete(client: TestClient, agent: Api, agent2: Api) -> None:
    customer = await agent.post("/api/v1/clients", {"name": "ООО Контакт"}, expect=201)
    csrf = await logged_in(client, agent)
    base = f"/clients/{customer['id']}"
    _, text = await post_form(client, base + "/contacts", {"name": "", "phones": "abc"}, csrf, status=422)
    assert field_error(text, "nc-", "name") == "Заполните это поле."
    assert field_error(text, "nc-", "phones") == "«abc» — не номер телефона."

    location, _ = await post_form(client, base + "/contacts", {
        "name": "Пётр Иванов", "position": "Директор", "phones": "8 916 111-22-33",
        "emails": "petr@k.ru", "telegram": ""}, csrf)
    assert location == base + "?tab=contacts"
    [contact] = (await agent.get(f"/api/v1/contacts?client={customer['id']}"))["items"]
    assert contact["phones"] == ["+79161112233"]
    tab = await page(client, location)
    assert "Пётр Иванов" in tab and "Директор" in tab and "+7 916 111-22-33" in tab and ">Позвонить<" in tab

    await post_form(client, f"{base}/contacts/{contact['id']}", {
        "name": "Пётр Петров", "position": "", "phones": "", "emails": "petr@k.ru", "telegram": "",
        "comment": ""}, csrf)
    edited = await agent.get(f"/api/v1/contacts/{contact['id']}")
    assert edited["name"] == "Пётр Петров" and edited["phones"] == []

    other = await agent.post("/api/v1/clients", {"name": "Другой"}, expect=201)
    await post_form(client, f"/clients/{other['id']}/contacts/{contact['id']}/delete", {}, csrf, status=404)
    await post_form(client, f"{base}/contacts/{contact['id']}/delete", {}, csrf)
    await agent.get(f"/api/v1/contacts/{contact['id']}", expect=404)


async def test_new_deal_from_the_card(client: TestClient, agent: Api) -> None:
    customer = await agent.post("/api/v1/clients", {"name": "ООО Сделочное"}, expect=201)
    csrf = await logged_in(client, agent)
    base = f"/clients/{customer['id']}"
    _, text = await post_form(client, base + "/deals", {"title": "", "amount": "много"}, csrf, status=422)
    assert field_error(text, "deal-", "title") == "Заполните это поле."
    assert field_error(text, "deal-", "amount").startswith("Введите число")
    location, _ = await post_form(client, base + "/deals", {"title": "Поставка труб", "amount": "1 500,50"},
                                  csrf)
    assert location == base + "?tab=deals"
    [deal] = (await agent.get("/api/v1/deals", params={"client": str(customer["id"])}))["items"]
    assert deal["title"] == "Поставка труб" and deal["amount"] == 1500.5
    assert deal["responsible_id"] == agent.id
    assert re.search(r"1\s500,50\s₽", await page(client, location))


async def test_leads_list_filters_new_lead_take_and_convert(client: TestClient, agent: Api,
                                                            agent2: Api, admin: Api) -> None:
    unsorted = await admin.post("/api/v1/leads", {"name": "Входящий 8 916", "manager_id": None,
                                                  "unsorted": True, "phones": ["+79160000001"]}, expect=201)
    await agent2.post("/api/v1/leads", {"name": "Лид коллеги"}, expect=201)
    csrf = await logged_in(client, agent)

    listing = await page(client, "/leads")
    assert "Входящий 8 916" in listing and "Лид коллеги" not in listing and "Не разобрано" in listing
    assert "Входящий 8 916" in await page(client, "/leads?show=unsorted")
    assert "Входящий 8 916" not in await page(client, "/leads?show=mine")
    assert "Входящий 8 916" in await page(client, "/leads?q=8+916+000-00-01")

    _, text = await post_form(client, "/leads", {"name": "", "phones": "xyz"}, csrf, status=422)
    assert field_error(text, "new-", "name") == "Заполните это поле."
    location, _ = await post_form(client, "/leads", {
        "name": "Светлана <b>", "source": "выставка", "phones": "8 (903) 555-44-33", "emails": "",
        "telegram": "", "comment": ""}, csrf)
    assert re.fullmatch(r"/leads/\d+", location)
    card = await page(client, location)
    assert "Светлана &lt;b&gt;" in card and "выставка" in card and "+7 903 555-44-33" in card
    assert "Сделать клиентом" in card and "Взять себе" not in card  # already mine
    assert "Светлана" in await page(client, "/leads?show=mine")

    unsorted_card = await page(client, f"/leads/{unsorted['id']}")
    assert "Взять себе" in unsorted_card and "Никто не взял" in unsorted_card
    await post_form(client, f"/leads/{unsorted['id']}/take", {}, csrf)
    taken = await agent.get(f"/api/v1/leads/{unsorted['id']}")
    assert taken["manager_id"] == agent.id and taken["unsorted"] is False

    lead_id = int(location.rsplit("/", 1)[1])
    _, text = await post_form(client, f"{location}/convert", {"kind": "company", "name": ""}, csrf,
                              status=422)
    assert field_error(text, "cv-", "name") == "Заполните это поле."
    assert "data-open-now" in text  # the dialog opens again with the reason
    target, _ = await post_form(client, f"{location}/convert", {
        "kind": "company", "name": "ООО «Светлана»", "contact_name": "Светлана Ивановна"}, csrf)
    assert re.fullmatch(r"/clients/\d+", target)
    converted = await page(client, target)
    assert "ООО «Светлана»" in converted and "+7 903 555-44-33" in converted
    assert "Светлана Ивановна" in await page(client, target + "?tab=contacts")
    after = await page(client, f"/leads/{lead_id}")
    assert f'href="{target}"' in after and "Открыть клиента" in after
    _, text = await post_form(client, f"{location}/convert", {"kind": "person", "name": "Ещё раз"}, csrf,
                              status=409)
    assert "Этот лид уже стал клиентом." in text


async def test_pages_speak_english(client: TestClient, agent: Api) -> None:
    customer = await agent.post("/api/v1/clients", {"name": "Acme", "phones": ["+79161234567"]}, expect=201)
    lead = await agent.post("/api/v1/leads", {"name": "Someone"}, expect=201)
    csrf = await logged_in(client, agent)
    await post_form(client, "/language", {"language": "en", "next": "/clients"}, csrf)
    assert "New client" in await page(client, "/clients")
    card = await page(client, f"/clients/{customer['id']}")
    assert ">Requisites" in card and ">Call</button>" in card
    assert "Calling from the CRM arrives with telephony." in card
    assert "Make a client" in await page(client, f"/leads/{lead['id']}")
    _, text = await post_form(client, "/clients", {"name": "", "phones": "12"}, csrf, status=422)
    assert field_error(text, "new-", "phones") == "“12” is not a phone number."


async def test_a_lead_with_a_known_phone_says_which_client_has_it(client: TestClient, agent: Api,
                                                                 agent2: Api, admin: Api) -> None:
    mine = await agent.post("/api/v1/clients", {"name": "ООО Знакомое", "phones": ["+79161234567"]},
                            expect=201)
    await agent2.post("/api/v1/clients", {"name": "Чужое ООО", "emails": ["x@y.ru"]}, expect=201)
    # a duplicate lead (as a call or a letter makes one; a person would be stopped by the duplicate check)
    lead = await admin.post("/api/v1/leads", {"name": "Опять они", "phones": ["8 916 123 45 67"],
                                              "emails": ["x@y.ru"], "manager_id": agent.id,
                                              "allow_duplicate": True}, expect=201)
    fresh = await agent.post("/api/v1/leads", {"name": "Новые", "phones": ["+79035554433"]}, expect=201)
    await logged_in(client, agent)
    card = await page(client, f"/leads/{lead['id']}")
    assert "Уже знакомы" in card and f'<a href="/clients/{mine["id"]}">ООО Знакомое</a>' in card
    assert "Чужое ООО" not in card  # a client the agent may not see stays unnamed
    assert "Уже знакомы" not in await page(client, f"/leads/{fresh['id']}")


async def test_a_lead_source_that_is_a_channel_is_named_as_the_ui_names_channels(
        client: TestClient, agent: Api) -> None:
    for name, source in (("Из телеграма", "telegram"), ("Из СМС", "sms"), ("С выставки", "выставка")):
        await agent.post("/api/v1/leads", {"name": name, "source": source}, expect=201)
    await logged_in(client, agent)
    listing = await page(client, "/leads")
    assert "Telegram · " in listing and "SMS · " in listing and "выставка · " in listing
    assert "telegram · " not in listing and "sms · " not in listing
