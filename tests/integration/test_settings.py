"""Settings: custom fields, tags, loss reasons and the access setting (core, API and the admin pages)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from hub.crm import settings
from hub.crm.errors import Forbidden, ValidationError
from hub.crm.models import User
from hub.web.keys import DB
from tests.integration.conftest import Api
from tests.integration.test_web_pages import logged_in, page


async def default_pipeline(api: Api) -> dict[str, Any]:
    return next(p for p in (await api.get("/api/v1/pipelines"))["items"] if p["is_default"])


async def form(
    client: TestClient, path: str, data: dict[str, Any] | list[tuple[str, str]], csrf: str, status: int = 303
) -> str:
    fields = list(data.items()) if isinstance(data, dict) else list(data)
    async with client.post(path, data=[("csrf_token", csrf), *fields], allow_redirects=False) as response:
        text = await response.text()
        assert response.status == status, f"{path}: {response.status} {text[:1500]}"
        return response.headers.get("Location", "") if status == 303 else text


# --- core ------------------------------------------------------------------------------------------


async def test_core_changes_are_for_administrators_and_validated(
    app: web.Application, admin: Api, agent: Api
) -> None:
    async with app[DB].transaction() as s:
        admin_user = await s.get(User, admin.id)
        agent_user = await s.get(User, agent.id)
        assert admin_user is not None and agent_user is not None
        with pytest.raises(Forbidden):
            await settings.create_custom_field(
                s, agent_user, {"entity": "client", "key": "x", "label": "X", "type": "text"}
            )
        with pytest.raises(Forbidden):
            await settings.update_access(s, agent_user, {"agents_see_all": True})
        with pytest.raises(ValidationError) as bad:
            await settings.create_custom_field(
                s,
                admin_user,
                {"entity": "lead", "key": "9x", "label": "", "type": "colour", "choices": ["a"]},
            )
        assert set(bad.value.fields) == {"entity", "key", "label", "type", "choices"}
        with pytest.raises(ValidationError) as bad:
            await settings.create_custom_field(
                s,
                admin_user,
                {"entity": "deal", "key": "kind", "label": "Вид", "type": "choice", "choices": ["a", "a"]},
            )
        assert bad.value.fields == {"choices": "choices must differ"}
        field = await settings.create_custom_field(
            s,
            admin_user,
            {
                "entity": "deal",
                "key": "kind",
                "label": "Вид",
                "type": "choice",
                "choices": ["опт", "розница"],
            },
        )
        assert field["position"] == 0 and field["choices"] == ["опт", "розница"]
        assert await settings.update_access(s, admin_user, {"agents_see_all": True}) == {
            "agents_see_all": True, "route_to_free_agent": False, "call_grant": "end_of_day",
            "call_grant_hours": 8,
        }
    async with app[DB].reading() as s:
        assert (await settings.get_access(s, agent_user))["agents_see_all"] is True
        assert [
            f["key"] for f in (await settings.list_custom_fields(s, agent_user, entity="deal")).items
        ] == ["kind"]


# --- API -------------------------------------------------------------------------------------------


async def test_custom_fields_crud_and_client_values_checked_against_them(admin: Api, agent: Api) -> None:
    body = {"entity": "client", "key": "segment", "label": "Сегмент", "type": "choice", "choices": ["A", "B"]}
    await agent.post("/api/v1/custom-fields", body, expect=403)
    segment = await admin.post("/api/v1/custom-fields", body, expect=201)
    assert segment["key"] == "segment" and segment["choices"] == ["A", "B"]
    await admin.post("/api/v1/custom-fields", body, expect=409)
    bad = await admin.post(
        "/api/v1/custom-fields",
        {"entity": "client", "key": "Bad Key", "label": "x", "type": "choice"},
        expect=422,
    )
    assert set(bad["error"]["fields"]) == {"key", "choices"}
    contract = await admin.post(
        "/api/v1/custom-fields",
        {"entity": "client", "key": "contract_no", "label": "Договор", "type": "text"},
        expect=201,
    )
    budget = await admin.post(
        "/api/v1/custom-fields",
        {"entity": "deal", "key": "budget", "label": "Бюджет", "type": "number"},
        expect=201,
    )
    assert contract["position"] == 1 and budget["position"] == 0
    listed = await agent.get("/api/v1/custom-fields", params={"entity": "client"})
    assert [f["key"] for f in listed["items"]] == ["segment", "contract_no"]
    await agent.get("/api/v1/custom-fields", params={"entity": "lead"}, expect=422)
    assert (await agent.get(f"/api/v1/custom-fields/{budget['id']}"))["type"] == "number"

    changed = await admin.patch(
        f"/api/v1/custom-fields/{segment['id']}",
        {"label": "Сегмент рынка", "choices": ["A", "B", "C"], "position": 5},
    )
    assert changed["label"] == "Сегмент рынка" and changed["choices"] == ["A", "B", "C"]
    refused = await admin.patch(
        f"/api/v1/custom-fields/{segment['id']}", {"type": "text", "key": "seg"}, expect=422
    )
    assert set(refused["error"]["fields"]) == {"type", "key"}
    await admin.patch(f"/api/v1/custom-fields/{contract['id']}", {"choices": ["x"]}, expect=422)
    await agent.patch(f"/api/v1/custom-fields/{segment['id']}", {"label": "x"}, expect=403)

    accepted = await agent.post(
        "/api/v1/clients",
        {"name": "ООО Вектор", "manager_id": agent.id, "custom": {"segment": "C", "contract_no": "Д-17"}},
        expect=201,
    )
    assert accepted["custom"] == {"segment": "C", "contract_no": "Д-17"}
    rejected = await agent.post(
        "/api/v1/clients", {"name": "ООО Ось", "custom": {"segment": "Z"}}, expect=422
    )
    assert "custom.segment" in rejected["error"]["fields"]
    await agent.post("/api/v1/clients", {"name": "ООО Ось", "custom": {"budget": 5}}, expect=422)
    deal = await admin.post(
        "/api/v1/deals",
        {"title": "Поставка", "client_id": accepted["id"], "custom": {"budget": 150000}},
        expect=201,
    )
    assert deal["custom"] == {"budget": 150000}
    await admin.post("/api/v1/deals", {"title": "Поставка", "custom": {"budget": "много"}}, expect=422)

    await agent.delete(f"/api/v1/custom-fields/{contract['id']}", expect=403)
    await admin.delete(f"/api/v1/custom-fields/{contract['id']}")
    await admin.get(f"/api/v1/custom-fields/{contract['id']}", expect=404)
    await agent.post("/api/v1/clients", {"name": "ООО Ось", "custom": {"contract_no": "1"}}, expect=422)


async def test_tags_with_usage_rename_colour_delete(admin: Api, agent: Api) -> None:
    client = await admin.post("/api/v1/clients", {"name": "ООО Ромашка", "tags": ["vip", "опт"]}, expect=201)
    await admin.post(
        "/api/v1/deals", {"title": "Сделка", "client_id": client["id"], "tags": ["vip"]}, expect=201
    )
    tags = {t["name"]: t for t in (await agent.get("/api/v1/tags"))["items"]}
    assert (tags["vip"]["clients"], tags["vip"]["deals"]) == (1, 1)
    assert (tags["опт"]["clients"], tags["опт"]["deals"]) == (1, 0)
    vip = tags["vip"]
    await agent.patch(f"/api/v1/tags/{vip['id']}", {"name": "VIP"}, expect=403)
    renamed = await admin.patch(f"/api/v1/tags/{vip['id']}", {"name": "VIP", "color": "#E53935"})
    assert renamed == {**vip, "name": "VIP", "color": "#e53935"}
    assert (await admin.get(f"/api/v1/clients/{client['id']}"))["tags"] == ["VIP", "опт"]
    bad = await admin.patch(f"/api/v1/tags/{vip['id']}", {"color": "red", "name": ""}, expect=422)
    assert set(bad["error"]["fields"]) == {"color", "name"}
    await admin.patch(f"/api/v1/tags/{vip['id']}", {"name": "опт"}, expect=409)
    assert (await admin.patch(f"/api/v1/tags/{vip['id']}", {"color": ""}))["color"] == ""
    await agent.delete(f"/api/v1/tags/{vip['id']}", expect=403)
    await admin.delete(f"/api/v1/tags/{vip['id']}")
    await admin.get(f"/api/v1/tags/{vip['id']}", expect=404)
    assert (await admin.get(f"/api/v1/clients/{client['id']}"))["tags"] == ["опт"]


async def test_loss_reasons_deactivate_and_access_setting(admin: Api, agent: Api, agent2: Api) -> None:
    reason = await admin.post("/api/v1/loss-reasons", {"name": "Долгая поставка"}, expect=201)
    await agent.patch(f"/api/v1/loss-reasons/{reason['id']}", {"active": False}, expect=403)
    off = await admin.patch(f"/api/v1/loss-reasons/{reason['id']}", {"active": False})
    assert off == {"id": reason["id"], "name": "Долгая поставка", "active": False}
    assert reason["id"] not in [r["id"] for r in (await agent.get("/api/v1/loss-reasons"))["items"]]
    await admin.patch(f"/api/v1/loss-reasons/{reason['id']}", {"active": "no"}, expect=422)
    await admin.patch("/api/v1/loss-reasons/999999", {"active": True}, expect=404)

    theirs = await agent2.post(
        "/api/v1/clients", {"name": "Чужой клиент", "manager_id": agent2.id}, expect=201
    )
    assert (await agent.get("/api/v1/settings/access"))["agents_see_all"] is False
    await agent.get(f"/api/v1/clients/{theirs['id']}", expect=404)
    await agent.patch("/api/v1/settings/access", {"agents_see_all": True}, expect=403)
    await admin.patch("/api/v1/settings/access", {}, expect=422)
    assert (await admin.patch("/api/v1/settings/access", {"agents_see_all": True}))["agents_see_all"] is True
    assert (await agent.get(f"/api/v1/clients/{theirs['id']}"))["name"] == "Чужой клиент"
    await admin.patch("/api/v1/settings/access", {"agents_see_all": False})
    await agent.get(f"/api/v1/clients/{theirs['id']}", expect=404)


# --- pages -----------------------------------------------------------------------------------------

SECTIONS = (
    "/settings",
    "/settings/users",
    "/settings/users/new",
    "/settings/pipelines/1",
    "/settings/loss-reasons",
    "/settings/fields",
    "/settings/tags",
    "/settings/access",
)


async def test_settings_pages_are_for_administrators(client: TestClient, agent: Api, admin: Api) -> None:
    csrf = await logged_in(client, agent)
    for path in SECTIONS:
        html = await page(client, path, 403)
        assert "Этот раздел доступен только администраторам" in html
    await form(client, "/settings/access", {"agents_see_all": "on"}, csrf, status=403)
    assert (await admin.get("/api/v1/settings/access"))["agents_see_all"] is False
    client.session.cookie_jar.clear()
    await logged_in(client, admin)
    async with client.get("/settings/pipelines", allow_redirects=False) as response:
        assert response.status == 303 and re.fullmatch(
            r"/settings/pipelines/\d+", response.headers["Location"]
        )
    for path in SECTIONS:
        html = await page(client, path)
        assert "Разделы настроек" in html and "/static/settings.js" in html


async def test_users_are_created_and_edited_with_errors_next_to_the_fields(
    client: TestClient, admin: Api, agent: Api
) -> None:
    csrf = await logged_in(client, admin)
    html = await form(
        client,
        "/settings/users",
        {
            "name": "",
            "login": "bad login",
            "password": "",
            "role": "agent",
            "language": "ru",
            "extensions": "101",
        },
        csrf,
        status=422,
    )
    assert "Только латинские буквы, цифры и . @ + - _" in html and "Введите пароль." in html
    assert 'aria-invalid="true"' in html
    html = await form(
        client,
        "/settings/users",
        {
            "name": "Ольга",
            "login": "olga",
            "password": "Pa55-word-2026!",
            "role": "agent",
            "language": "en",
            "extensions": "101",
        },
        csrf,
        status=409,
    )
    assert "Номер 101 уже у пользователя agent." in html and 'value="olga"' in html
    assert (
        await form(
            client,
            "/settings/users",
            {
                "name": "Ольга <b>Новая</b>",
                "login": "olga",
                "password": "Pa55-word-2026!",
                "role": "manager",
                "language": "en",
                "extensions": "103",
            },
            csrf,
        )
        == "/settings/users?done=created"
    )
    users = {u["login"]: u for u in (await admin.get("/api/v1/users"))["items"]}
    olga = users["olga"]
    assert (olga["role"], olga["language"], olga["extensions"]) == ("manager", "en", ["103"])
    listing = await page(client, "/settings/users?done=created")
    assert "Создано." in listing and "Ольга &lt;b&gt;Новая&lt;/b&gt;" in listing and "103" in listing

    assert (
        await form(
            client,
            f"/settings/users/{olga['id']}",
            {
                "name": "Ольга Новая",
                "login": "olga",
                "role": "agent",
                "language": "ru",
                "extensions": "103, 104",
            },
            csrf,
        )
        == "/settings/users?done=saved"
    )  # no "active": deactivated
    olga = await admin.get(f"/api/v1/users/{olga['id']}")
    assert (olga["active"], olga["role"], olga["extensions"]) == (False, "agent", [])
    html = await form(
        client,
        f"/settings/users/{admin.id}",
        {"name": "Анна", "login": "admin", "role": "agent", "language": "ru", "active": "on"},
        csrf,
        status=409,
    )
    assert "Последнего активного администратора нельзя лишить роли или отключить." in html
    html = await form(client, f"/settings/users/{agent.id}/password", {"password": ""}, csrf, status=422)
    assert "Введите пароль." in html
    assert (
        await form(client, f"/settings/users/{agent.id}/password", {"password": "new-pass-1"}, csrf)
        == f"/settings/users/{agent.id}?done=password"
    )
    async with client.post(
        "/api/v1/auth/token", json={"login": "agent", "password": "new-pass-1"}
    ) as response:
        assert response.status == 200


async def test_stage_editor_reorders_renames_and_refuses_to_drop_stages_with_deals(
    client: TestClient, admin: Api
) -> None:
    pipeline = await default_pipeline(admin)
    stages = pipeline["stages"]
    used = stages[1]
    customer = await admin.post("/api/v1/clients", {"name": "ООО Ромашка"}, expect=201)
    await admin.post(
        "/api/v1/deals", {"title": "Сделка", "client_id": customer["id"], "stage_id": used["id"]}, expect=201
    )
    csrf = await logged_in(client, admin)
    html = await page(client, f"/settings/pipelines/{pipeline['id']}")
    assert (
        "1 сделка" in html and html.count('name="stage_name"') == len(stages) + 4
    )  # the new-row template, a new pipeline's 3

    def rows(
        order: list[dict[str, Any]],
        removed: set[int] = frozenset(),
        rename: dict[int, str] | None = None,
        extra: list[tuple[str, str, str]] = (),
    ) -> list[tuple[str, str]]:
        data = [("name", pipeline["name"])]
        for st in order:
            data += [
                ("stage_id", str(st["id"])),
                ("stage_name", (rename or {}).get(st["id"], st["name"])),
                ("stage_color", st["color"]),
                ("stage_kind", st["kind"]),
                ("stage_remove", "1" if st["id"] in removed else "0"),
            ]
        for name, color, kind in extra:
            data += [
                ("stage_id", ""),
                ("stage_name", name),
                ("stage_color", color),
                ("stage_kind", kind),
                ("stage_remove", "0"),
            ]
        return data

    order = [stages[1], stages[0], *stages[2:]]
    path = f"/settings/pipelines/{pipeline['id']}"
    assert (
        await form(
            client,
            path,
            rows(order, rename={stages[0]["id"]: "Первый звонок"}, extra=[("Договор", "#123456", "active")]),
            csrf,
        )
        == path + "?done=saved"
    )
    after = (await default_pipeline(admin))["stages"]
    assert [st["id"] for st in after[:-1]] == [st["id"] for st in order]
    assert after[1]["name"] == "Первый звонок" and (after[-1]["name"], after[-1]["color"]) == (
        "Договор",
        "#123456",
    )

    html = await form(client, path, rows(after, removed={used["id"], after[-1]["id"]}), csrf, status=409)
    assert "В этапе есть сделки: сначала перенесите их в другой этап." in html
    assert len((await default_pipeline(admin))["stages"]) == len(after)
    html = await form(client, path, rows(after, rename={after[2]["id"]: ""}), csrf, status=422)
    assert "err-row2-name" in html and 'aria-invalid="true"' in html
    assert await form(client, path, rows(after, removed={after[-1]["id"]}), csrf) == path + "?done=saved"
    assert len((await default_pipeline(admin))["stages"]) == len(after) - 1

    created = await form(
        client,
        "/settings/pipelines",
        [
            ("name", "Тендеры"),
            *[
                (k, v)
                for name, kind in (("Новая", "active"), ("Выиграно", "won"))
                for k, v in (
                    ("stage_id", ""),
                    ("stage_name", name),
                    ("stage_color", "#9e9e9e"),
                    ("stage_kind", kind),
                    ("stage_remove", "0"),
                )
            ],
        ],
        csrf,
    )
    new_id = int(re.search(r"/settings/pipelines/(\d+)", created).group(1))  # type: ignore[union-attr]
    assert (await admin.get(f"/api/v1/pipelines/{new_id}"))["name"] == "Тендеры"
    html = await form(client, f"/settings/pipelines/{pipeline['id']}/delete", {}, csrf, status=409)
    assert "Основную воронку удалить нельзя." in html
    assert (
        await form(client, f"/settings/pipelines/{new_id}/delete", {}, csrf)
        == "/settings/pipelines?done=deleted"
    )


async def test_loss_reasons_fields_tags_and_access_pages(client: TestClient, admin: Api, agent: Api) -> None:
    await admin.post(
        "/api/v1/clients", {"name": "ООО Ромашка", "tags": ["<script>alert(1)</script>"]}, expect=201
    )
    csrf = await logged_in(client, admin)
    assert (
        await form(client, "/settings/loss-reasons", {"name": "Долгая поставка"}, csrf)
        == "/settings/loss-reasons?done=created"
    )
    html = await form(client, "/settings/loss-reasons", {"name": "Долгая поставка"}, csrf, status=409)
    assert "Такая причина отказа уже есть." in html
    reason = next(
        r for r in (await admin.get("/api/v1/loss-reasons"))["items"] if r["name"] == "Долгая поставка"
    )
    await form(client, f"/settings/loss-reasons/{reason['id']}", {"active": "0"}, csrf)
    assert reason["id"] not in [r["id"] for r in (await admin.get("/api/v1/loss-reasons"))["items"]]
    assert "Не предлагается" in await page(client, "/settings/loss-reasons")

    html = await form(
        client,
        "/settings/fields",
        {"entity": "deal", "label": "Вид", "key": "Вид", "type": "choice", "choices": "", "position": "x"},
        csrf,
        status=422,
    )
    assert "Латинские буквы a-z, цифры и _, начиная с буквы." in html
    assert "Введите целое число." in html
    assert "Укажите хотя бы один вариант, по одному в строке." in html
    assert (
        await form(
            client,
            "/settings/fields",
            {"entity": "deal", "label": "Вид", "key": "kind", "type": "choice", "choices": "опт\nрозница\n"},
            csrf,
        )
        == "/settings/fields?done=created"
    )
    field = (await admin.get("/api/v1/custom-fields"))["items"][0]
    assert field["choices"] == ["опт", "розница"]
    await form(
        client,
        f"/settings/fields/{field['id']}",
        {"label": "Вид сделки", "position": "3", "choices": "опт"},
        csrf,
    )
    assert (await admin.get(f"/api/v1/custom-fields/{field['id']}"))["label"] == "Вид сделки"
    assert "Вид сделки" in await page(client, f"/settings/fields/{field['id']}")
    await form(client, f"/settings/fields/{field['id']}/delete", {}, csrf)
    assert (await admin.get("/api/v1/custom-fields"))["items"] == []

    html = await page(client, "/settings/tags")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert "1 клиент, 0 сделок" in html
    tag = (await admin.get("/api/v1/tags"))["items"][0]
    await form(
        client, f"/settings/tags/{tag['id']}", {"name": "важный", "colored": "on", "color": "#43a047"}, csrf
    )
    assert (await admin.get(f"/api/v1/tags/{tag['id']}"))["color"] == "#43a047"
    html = await form(client, f"/settings/tags/{tag['id']}", {"name": ""}, csrf, status=422)
    assert "err-" in html
    await form(client, f"/settings/tags/{tag['id']}/delete", {}, csrf)
    assert (await admin.get("/api/v1/tags"))["items"] == []

    await form(client, "/settings/access", {"agents_see_all": "on"}, csrf)
    assert (await agent.get("/api/v1/settings/access"))["agents_see_all"] is True
    assert "checked" in await page(client, "/settings/access")
    await form(client, "/settings/access", {}, csrf)
    assert (await agent.get("/api/v1/settings/access"))["agents_see_all"] is False


async def test_english_settings(client: TestClient, app: web.Application, admin: Api) -> None:
    async with app[DB].transaction() as s:
        user = await s.scalar(select(User).where(User.id == admin.id))
        assert user is not None
        user.language = "en"
    await logged_in(client, admin)
    html = await page(client, "/settings/fields")
    assert "New custom field" in html and "Settings sections" in html


async def test_an_extension_is_digits_only(client: TestClient, admin: Api, agent: Api) -> None:
    for bad in ("abc", "10a", "*99", "1 01"):
        refused = await admin.patch(f"/api/v1/users/{agent.id}", {"extensions": [bad]}, expect=422)
        assert "digits only" in refused["error"]["fields"]["extensions"]
    csrf = await logged_in(client, admin)
    html = await form(client, f"/settings/users/{agent.id}",
                      {"name": "Агент", "login": "agent", "role": "agent", "language": "ru", "active": "on",
                       "extensions": "abc"}, csrf, status=422)
    assert "abc — не внутренний номер: только цифры, как номер телефона на АТС" in html
    kept = await admin.patch(f"/api/v1/users/{agent.id}", {"extensions": ["101", "2045"]})
    assert kept["extensions"] == ["101", "2045"]
