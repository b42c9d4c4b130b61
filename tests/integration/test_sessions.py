"""Sessions and API tokens done properly (issue 13, finding 1): a password change or reset ends the
user's other sessions and tokens, one's own change needs the current password, API tokens expire,
are named, listed and revoked, and passwords follow the policy."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from hub.crm import demo, users
from hub.crm.errors import ValidationError
from hub.crm.models import AuthToken, utcnow
from hub.crm.tokens import hash_token
from hub.web.auth import SESSION_COOKIE
from hub.web.keys import CONFIG, DB
from tests.integration.conftest import PASSWORD, Api, login_api

NEW_PASSWORD = "Brand-new-secret-42"


async def browser(client: TestClient, login: str, password: str = PASSWORD) -> str:
    """Log in through the form as a separate browser would; the raw session cookie (the test
    client's own cookie jar is left empty, so each session is sent explicitly)."""
    page = await client.get("/login")
    nonce = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
    assert nonce is not None
    response = await client.post("/login", data={"login": login, "password": password,
                                                  "csrf_token": nonce.group(1)}, allow_redirects=False)
    assert response.status == 303, await response.text()
    raw = response.cookies[SESSION_COOKIE].value
    client.session.cookie_jar.clear()
    return raw


async def page(client: TestClient, session: str, path: str = "/") -> tuple[int, str]:
    """GET a page with this session cookie: the status and the redirect target or the HTML."""
    response = await client.get(path, headers={"Cookie": f"{SESSION_COOKIE}={session}"},
                                allow_redirects=False)
    text = response.headers.get("Location", "") if response.status in (302, 303) else await response.text()
    client.session.cookie_jar.clear()
    return response.status, text


async def csrf_of(client: TestClient, session: str) -> str:
    status, html = await page(client, session)
    assert status == 200
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert found is not None
    return found.group(1)


async def post_form(client: TestClient, session: str, path: str, data: dict[str, str]) -> tuple[int, str]:
    data = {**data, "csrf_token": await csrf_of(client, session)}
    response = await client.post(path, data=data, headers={"Cookie": f"{SESSION_COOKIE}={session}"},
                                 allow_redirects=False)
    text = response.headers.get("Location", "") if response.status in (302, 303) else await response.text()
    client.session.cookie_jar.clear()
    return response.status, text


async def token_status(client: TestClient, token: str) -> int:
    async with client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status


# --- a password change or reset ends the other sessions and tokens ------------------------------------

async def test_an_admin_reset_by_the_api_ends_the_users_tokens_and_sessions(client: TestClient, admin: Api,
                                                                            agent: Api) -> None:
    second = await login_api(client, "agent")
    session = await browser(client, "agent")
    assert (await page(client, session))[0] == 200
    # an administrator resetting another's password needs no current password
    await admin.patch(f"/api/v1/users/{agent.id}", {"password": NEW_PASSWORD})
    assert await token_status(client, agent.token) == 401
    assert await token_status(client, second.token) == 401
    assert await page(client, session) == (303, "/login")
    assert await token_status(client, admin.token) == 200  # the administrator's own stay
    await login_api(client, "agent", NEW_PASSWORD)


async def test_an_admin_reset_on_the_settings_page_ends_the_users_tokens(client: TestClient, admin: Api,
                                                                         agent: Api) -> None:
    agent_session = await browser(client, "agent")
    admin_session = await browser(client, "admin")
    status, where = await post_form(client, admin_session, f"/settings/users/{agent.id}/password",
                                    {"password": NEW_PASSWORD})
    assert (status, where) == (303, f"/settings/users/{agent.id}?done=password")
    assert await token_status(client, agent.token) == 401
    assert await page(client, agent_session) == (303, "/login")
    assert (await page(client, admin_session))[0] == 200
    await login_api(client, "agent", NEW_PASSWORD)


async def test_ones_own_change_ends_the_other_sessions_and_keeps_the_current(client: TestClient,
                                                                             agent: Api) -> None:
    other_token = await login_api(client, "agent")
    other_browser = await browser(client, "agent")
    changed = await agent.patch(f"/api/v1/users/{agent.id}",
                                {"password": NEW_PASSWORD, "current_password": PASSWORD})
    assert changed["id"] == agent.id
    assert await page(client, other_browser) == (303, "/login")  # the other browser is logged out
    assert await token_status(client, other_token.token) == 401
    assert await token_status(client, agent.token) == 200  # the one that made the change stays
    await login_api(client, "agent", NEW_PASSWORD)


async def test_an_admins_own_change_on_the_settings_page_keeps_that_session_only(client: TestClient,
                                                                                  admin: Api) -> None:
    here = await browser(client, "admin")
    elsewhere = await browser(client, "admin")
    status, html = await post_form(client, here, f"/settings/users/{admin.id}/password",
                                   {"password": NEW_PASSWORD})
    assert status == 422 and "Текущий пароль" in html  # one's own: the current password is asked for
    status, where = await post_form(client, here, f"/settings/users/{admin.id}/password",
                                    {"password": NEW_PASSWORD, "current_password": PASSWORD})
    assert (status, where) == (303, f"/settings/users/{admin.id}?done=password")
    assert (await page(client, here))[0] == 200
    assert await page(client, elsewhere) == (303, "/login")
    assert await token_status(client, admin.token) == 401


async def test_ones_own_change_needs_the_current_password(client: TestClient, agent: Api, admin: Api) -> None:
    for body in ({"password": NEW_PASSWORD}, {"password": NEW_PASSWORD, "current_password": "wrong-password"},
                 {"password": NEW_PASSWORD, "current_password": ""}):
        refused = await agent.patch(f"/api/v1/users/{agent.id}", body, expect=422)
        assert set(refused["error"]["fields"]) == {"current_password"}
    # an administrator changing their own password too
    refused = await admin.patch(f"/api/v1/users/{admin.id}", {"password": NEW_PASSWORD}, expect=422)
    assert set(refused["error"]["fields"]) == {"current_password"}
    # nothing changed, nothing ended
    assert await token_status(client, agent.token) == 200
    await login_api(client, "agent", PASSWORD)
    # other self-service fields need no password
    await agent.patch(f"/api/v1/users/{agent.id}", {"name": "Иван И."})


async def test_a_password_reset_from_the_command_line_ends_the_sessions(
        client: TestClient, app: web.Application, agent: Api) -> None:
    async with app[DB].transaction() as s:  # the same password again: not a change
        await users.create_or_update_user(s, "agent", PASSWORD, "agent")
    assert await token_status(client, agent.token) == 200
    async with app[DB].transaction() as s:
        await users.create_or_update_user(s, "agent", NEW_PASSWORD, "agent")
    assert await token_status(client, agent.token) == 401


# --- API tokens: revoke the current one, list, revoke by id, expiry --------------------------------------

async def test_delete_the_current_token_then_it_is_refused(client: TestClient, agent: Api) -> None:
    other = await login_api(client, "agent")
    await agent.delete("/api/v1/auth/token", expect=204)
    assert await token_status(client, agent.token) == 401
    await agent.delete("/api/v1/auth/token", expect=401)
    assert await token_status(client, other.token) == 200  # only that one


async def test_tokens_are_named_listed_and_revoked(client: TestClient, app: web.Application, admin: Api,
                                                   agent: Api, agent2: Api) -> None:
    async with client.post("/api/v1/auth/token",
                           json={"login": "agent", "password": PASSWORD, "name": "1C обмен"}) as response:
        assert response.status == 200
        issued = await response.json()
    assert issued["token"] and issued["user"]["id"] == agent.id and isinstance(issued["id"], int)
    assert issued["name"] == "1C обмен"
    session = await browser(client, "agent")

    listed = (await agent.get("/api/v1/auth/tokens"))["items"]
    by_id = {t["id"]: t for t in listed}
    assert issued["id"] in by_id and len(listed) == 3
    assert by_id[issued["id"]]["name"] == "1C обмен" and by_id[issued["id"]]["kind"] == "api"
    assert by_id[issued["id"]]["expires_at"] == issued["expires_at"]
    assert [t["current"] for t in listed].count(True) == 1
    mine = next(t for t in listed if t["current"])
    assert mine["kind"] == "api" and mine["last_used_at"] is not None
    assert {t["kind"] for t in listed} == {"api", "session"}
    assert all(t["user_id"] == agent.id for t in listed)
    assert "token_hash" not in mine and "token" not in mine and "csrf_token" not in mine

    # a stranger sees none of them and cannot revoke them: 404, as if they were not there
    assert all(t["user_id"] == agent2.id for t in (await agent2.get("/api/v1/auth/tokens"))["items"])
    await agent2.delete(f"/api/v1/auth/tokens/{issued['id']}", expect=404)
    await agent2.get("/api/v1/auth/tokens", params={"user_id": str(agent.id)}, expect=403)
    await agent2.delete("/api/v1/auth/tokens/999999", expect=404)
    await agent2.delete("/api/v1/auth/tokens/abc", expect=404)

    # the owner revokes one
    await agent.delete(f"/api/v1/auth/tokens/{issued['id']}", expect=204)
    assert await token_status(client, issued["token"]) == 401
    await agent.delete(f"/api/v1/auth/tokens/{issued['id']}", expect=404)

    # an administrator lists another's and revokes any, the browser session too
    theirs = (await admin.get("/api/v1/auth/tokens", params={"user_id": str(agent.id)}))["items"]
    assert len(theirs) == 2 and not any(t["current"] for t in theirs)
    await admin.get("/api/v1/auth/tokens", params={"user_id": "999999"}, expect=404)
    session_id = next(t["id"] for t in theirs if t["kind"] == "session")
    await admin.delete(f"/api/v1/auth/tokens/{session_id}", expect=204)
    assert await page(client, session) == (303, "/login")
    await admin.delete(f"/api/v1/auth/tokens/{mine['id']}", expect=204)
    assert await token_status(client, agent.token) == 401
    async with app[DB].reading() as s:
        assert (await s.scalars(select(AuthToken).where(AuthToken.user_id == agent.id))).all() == []


async def test_a_token_name_must_be_text(client: TestClient, agent: Api) -> None:
    async with client.post("/api/v1/auth/token",
                           json={"login": "agent", "password": PASSWORD, "name": 5}) as response:
        assert response.status == 422
        assert set((await response.json())["error"]["fields"]) == {"name"}


async def test_tokens_expire_after_token_days(client: TestClient, app: web.Application, agent: Api) -> None:
    assert app[CONFIG].server.token_days == 90
    async with app[DB].reading() as s:
        stored = await s.scalar(select(AuthToken).where(AuthToken.token_hash == hash_token(agent.token)))
    assert stored is not None and stored.expires_at is not None
    assert timedelta(days=89) < stored.expires_at - utcnow() <= timedelta(days=90)
    assert agent.user and stored.kind == "api"

    async with app[DB].transaction() as s:
        await s.execute(update(AuthToken).where(AuthToken.token_hash == hash_token(agent.token))
                        .values(expires_at=utcnow() - timedelta(seconds=1)))
    assert await token_status(client, agent.token) == 401
    # the next login purges it
    await login_api(client, "agent")
    async with app[DB].reading() as s:
        left = (await s.scalars(select(AuthToken.token_hash).where(AuthToken.user_id == agent.id))).all()
    assert hash_token(agent.token) not in left and len(left) == 1


async def test_token_days_is_configurable(client: TestClient, app: web.Application, agent: Api) -> None:
    app[CONFIG].server.token_days = 3
    issued = await login_api(client, "agent")
    mine = next(t for t in (await issued.get("/api/v1/auth/tokens"))["items"] if t["current"])
    async with app[DB].reading() as s:
        stored = await s.scalar(select(AuthToken).where(AuthToken.id == mine["id"]))
    assert stored is not None and stored.expires_at is not None
    assert timedelta(days=2) < stored.expires_at - utcnow() <= timedelta(days=3)


# --- the password policy ----------------------------------------------------------------------------

@pytest.mark.parametrize(("password", "reason"), [
    ("short-9ch", "at least 10"),
    ("olga.petrova", "login"),
    ("my-OLGA.PETROVA-pw", "login"),
    ("Qwerty123456", "common"),
    ("1234567890", "common"),
    ("ЙЦУКЕНГШЩЗ", "common"),
])
async def test_the_policy_refuses_weak_passwords_on_create_reset_and_change(
        client: TestClient, admin: Api, agent: Api, password: str, reason: str) -> None:
    body = {"login": "olga.petrova", "password": password, "name": "Ольга"}
    refused = await admin.post("/api/v1/users", body, expect=422)
    assert reason in refused["error"]["fields"]["password"]
    created = await admin.post("/api/v1/users", {**body, "password": NEW_PASSWORD}, expect=201)
    refused = await admin.patch(f"/api/v1/users/{created['id']}", {"password": password}, expect=422)
    assert reason in refused["error"]["fields"]["password"]
    olga = await login_api(client, "olga.petrova", NEW_PASSWORD)
    refused = await olga.patch(f"/api/v1/users/{olga.id}",
                               {"password": password, "current_password": NEW_PASSWORD}, expect=422)
    assert reason in refused["error"]["fields"]["password"]
    assert await token_status(client, olga.token) == 200


def test_the_policy_in_the_core() -> None:
    assert users.password_problem("Long-enough-42", "agent") is None
    assert users.password_problem("пароль", "agent") == "must be at least 10 characters"
    assert users.password_problem("пароль1234", "agent") == "is too common"
    assert users.password_problem("AGENT-secret-42", "agent") == "must not contain the login"
    assert users.password_problem("qwertyuiop", "ivan") == "is too common"
    assert users.password_problem("1q2w3e4r5t", "ivan") == "is too common"
    assert users.password_problem("Agent1-password", "x") is None  # a one-letter login is not searched for


async def test_the_command_line_applies_the_policy_too(app: web.Application) -> None:
    async with app[DB].transaction() as s:
        with pytest.raises(ValidationError) as refused:
            await users.create_or_update_user(s, "someone", "someone", "agent")
    assert "password" in refused.value.fields


async def test_the_demo_users_still_log_in(client: TestClient, app: web.Application) -> None:
    await demo.fill(app[DB], attachments_dir=app[CONFIG].server.attachments_dir)
    for login in ("admin", "manager", "agent1", "agent2"):
        api = await login_api(client, login, login)
        assert api.user["login"] == login


async def test_the_settings_page_lists_a_users_sessions_and_ends_one(client: TestClient, admin: Api,
                                                                     agent: Api) -> None:
    admin_session = await browser(client, "admin")
    status, html = await page(client, admin_session, f"/settings/users/{agent.id}")
    assert status == 200 and "Сеансы и API-токены" in html and "API-токен" in html
    token_id = (await agent.get("/api/v1/auth/tokens"))["items"][0]["id"]
    assert f"/settings/users/{agent.id}/tokens/{token_id}/end" in html
    end = f"/settings/users/{agent.id}/tokens/{token_id}/end"
    status, where = await post_form(client, admin_session, end, {})
    assert (status, where) == (303, f"/settings/users/{agent.id}?done=ended")
    assert await token_status(client, agent.token) == 401
    status, html = await page(client, admin_session, where)
    assert "Сеанс или токен завершён." in html and "Открытых сеансов и API-токенов нет." in html
