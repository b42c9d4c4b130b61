"""Bearer tokens, the browser session, CSRF, security headers."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, make_mocked_request
from sqlalchemy import delete, inspect, select, update
from sqlalchemy.orm.exc import DetachedInstanceError

from hub.config import Config
from hub.crm.models import AuthToken, User, utcnow
from hub.crm.tokens import hash_token
from hub.web.auth import LOGIN_COOKIE, SESSION_COOKIE, _lookup
from hub.web.keys import DB
from tests.integration.conftest import PASSWORD, Api, make_user

# --- bearer tokens ------------------------------------------------


async def test_token_is_issued_and_only_its_hash_is_stored(client: TestClient, app: web.Application,
                                                           agent: Api) -> None:
    assert agent.user["login"] == "agent" and agent.user["role"] == "agent"
    assert "password" not in agent.user and "password_hash" not in agent.user
    assert len(agent.token) >= 40
    async with app[DB].reading() as s:
        stored = (await s.scalars(select(AuthToken).where(AuthToken.user_id == agent.id))).all()
    assert [t.kind for t in stored] == ["api"]
    assert stored[0].token_hash == hash_token(agent.token) != agent.token
    me = await agent.get("/api/v1/me")
    assert me["id"] == agent.id and me["name"] == "Иван Агентов"


async def test_wrong_password_unknown_login_and_missing_fields(client: TestClient, agent: Api) -> None:
    for body in ({"login": "agent", "password": "nope"}, {"login": "ghost", "password": PASSWORD}):
        response = await client.post("/api/v1/auth/token", json=body)
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "unauthorized"
    response = await client.post("/api/v1/auth/token", json={})
    assert response.status == 422
    assert set((await response.json())["error"]["fields"]) == {"login", "password"}
    response = await client.post("/api/v1/auth/token", data="{not json",
                                 headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "bad_request"
    response = await client.post("/api/v1/auth/token", json=["agent", PASSWORD])
    assert response.status == 422
    assert (await response.json())["error"]["fields"] == {"body": "must be a JSON object"}


async def test_missing_malformed_and_unknown_tokens_are_401(client: TestClient, agent: Api) -> None:
    for headers in ({}, {"Authorization": "Basic YWdlbnQ6eA=="}, {"Authorization": "Bearer"},
                    {"Authorization": "Bearer not-a-token"}, {"Authorization": f"Bearer {agent.token}x"}):
        response = await client.get("/api/v1/me", headers=headers)
        assert response.status == 401, headers
        body = await response.json()
        assert body["error"]["code"] == "unauthorized" and body["error"]["message"]
        assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_public_routes_need_no_token(client: TestClient) -> None:
    assert (await client.get("/api/v1/openapi.json")).status == 200
    assert (await client.get("/healthz")).status == 200


async def test_inactive_users_cannot_log_in_and_their_tokens_stop(client: TestClient, admin: Api,
                                                                  agent: Api) -> None:
    await admin.delete(f"/api/v1/users/{agent.id}", expect=None)
    assert (await admin.get(f"/api/v1/users/{agent.id}"))["active"] is False
    await agent.get("/api/v1/me", expect=401)
    response = await client.post("/api/v1/auth/token", json={"login": "agent", "password": PASSWORD})
    assert response.status == 401


async def test_failed_logins_are_limited(client: TestClient, agent: Api) -> None:
    statuses = []
    for _ in range(11):
        response = await client.post("/api/v1/auth/token", json={"login": "agent", "password": "wrong"})
        statuses.append(response.status)
    assert statuses[:10] == [401] * 10 and statuses[10] == 429
    response = await client.post("/api/v1/auth/token", json={"login": "agent", "password": PASSWORD})
    assert response.status == 429  # even the right password waits out the window
    assert (await response.json())["error"]["code"] == "too_many_requests"


# --- the browser session ------------------------------------------------

async def browser_login(client: TestClient, login: str, password: str = PASSWORD,
                        next_path: str = "") -> ClientResponse:
    page = await client.get("/login")
    assert page.status == 200
    nonce = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
    assert nonce is not None
    url = "/login" + (f"?next={next_path}" if next_path else "")
    return await client.post(url, data={"login": login, "password": password, "csrf_token": nonce.group(1)},
                             allow_redirects=False)


async def session_csrf(client: TestClient) -> str:
    home = await client.get("/")
    assert home.status == 200
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', await home.text())
    assert found is not None
    return found.group(1)


async def test_login_page_is_russian_and_carries_security_headers(client: TestClient) -> None:
    response = await client.get("/login")
    text = await response.text()
    for word in ("Вход", "Логин", "Пароль"):
        assert word in text
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert "<script>" not in text and "style=" not in text  # nothing inline: the CSP would block it
    assert response.cookies[LOGIN_COOKIE]["httponly"]


async def test_home_redirects_to_login_without_a_session(client: TestClient) -> None:
    response = await client.get("/", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/login"


async def test_session_login_sets_a_safe_cookie_and_shows_home(client: TestClient, app: web.Application,
                                                               agent: Api) -> None:
    response = await browser_login(client, "agent")
    assert response.status == 303 and response.headers["Location"] == "/"
    cookie = next(c for c in response.headers.getall("Set-Cookie") if c.startswith(SESSION_COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # public_url is http in the tests
    assert f"Max-Age={14 * 86400}" in cookie
    async with app[DB].reading() as s:
        session = await s.scalar(select(AuthToken).where(AuthToken.kind == "session"))
    assert session is not None and session.user_id == agent.id and session.csrf_token
    assert session.expires_at is not None
    assert timedelta(days=13) < session.expires_at - utcnow() <= timedelta(days=14)
    home = await client.get("/")
    text = await home.text()
    assert home.status == 200 and "Иван Агентов" in text and "Выйти" in text
    assert '<script src="/static/app.js"' in text
    assert home.headers["X-Frame-Options"] == "DENY"
    me = await client.get("/api/v1/me")  # the API accepts the cookie too
    assert me.status == 200 and (await me.json())["id"] == agent.id


async def test_secure_cookies_behind_https(config: Config, aiohttp_client: Any) -> None:
    from hub.app import create_app

    config.server.public_url = "https://crm.example.ru"
    app = create_app(config)
    client = await aiohttp_client(app)
    await make_user(app, "agent", "agent")
    page = await client.get("/login")
    login_cookie = next(c for c in page.headers.getall("Set-Cookie") if c.startswith(LOGIN_COOKIE + "="))
    assert "Secure" in login_cookie
    nonce = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
    assert nonce is not None
    # The test client speaks plain HTTP, so it would not send a Secure cookie back by itself.
    response = await client.post("/login", data={"login": "agent", "password": PASSWORD,
                                                 "csrf_token": nonce.group(1)},
                                 headers={"Cookie": f"{LOGIN_COOKIE}={nonce.group(1)}"},
                                 allow_redirects=False)
    assert response.status == 303
    cookie = next(c for c in response.headers.getall("Set-Cookie") if c.startswith(SESSION_COOKIE + "="))
    assert "Secure" in cookie and "HttpOnly" in cookie


async def test_wrong_form_login_and_missing_form_nonce(client: TestClient, agent: Api) -> None:
    response = await browser_login(client, "agent", "wrong")
    assert response.status == 401
    assert "Неверный логин или пароль" in await response.text()
    assert SESSION_COOKIE not in {c.key for c in client.session.cookie_jar}
    response = await client.post("/login", data={"login": "agent", "password": PASSWORD},
                                 allow_redirects=False)
    assert response.status == 403


async def test_inactive_user_cannot_log_in_through_the_form(client: TestClient, admin: Api,
                                                            agent: Api) -> None:
    await admin.delete(f"/api/v1/users/{agent.id}", expect=None)
    response = await browser_login(client, "agent")
    assert response.status == 401


async def test_login_never_redirects_off_site(client: TestClient, agent: Api) -> None:
    response = await browser_login(client, "agent", next_path="//evil.example/x")
    assert response.status == 303 and response.headers["Location"] == "/"


async def test_csrf_is_required_for_cookie_authenticated_changes(client: TestClient, agent: Api) -> None:
    await browser_login(client, "agent")
    csrf = await session_csrf(client)
    lead = {"name": "Лид из браузера", "phones": ["+79161234567"]}
    refused = await client.post("/api/v1/leads", json=lead)
    assert refused.status == 403
    assert (await refused.json())["error"]["code"] == "forbidden"
    wrong = await client.post("/api/v1/leads", json=lead, headers={"X-CSRF-Token": "x" * 43})
    assert wrong.status == 403
    accepted = await client.post("/api/v1/leads", json=lead, headers={"X-CSRF-Token": csrf})
    assert accepted.status == 201, await accepted.text()
    # Bearer calls from programs need none (another phone: the first lead's is taken now).
    await agent.post("/api/v1/leads", {**lead, "phones": ["+79161234568"]}, expect=201)


async def test_logout_needs_csrf_and_ends_the_session(client: TestClient, app: web.Application,
                                                      agent: Api) -> None:
    await browser_login(client, "agent")
    csrf = await session_csrf(client)
    refused = await client.post("/logout", data={}, allow_redirects=False)
    assert refused.status == 403
    assert (await client.get("/", allow_redirects=False)).status == 200
    response = await client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/login"
    assert (await client.get("/", allow_redirects=False)).status == 303
    async with app[DB].reading() as s:
        assert await s.scalar(select(AuthToken).where(AuthToken.kind == "session")) is None


async def test_expired_sessions_are_refused(client: TestClient, app: web.Application, agent: Api) -> None:
    await browser_login(client, "agent")
    assert (await client.get("/", allow_redirects=False)).status == 200
    async with app[DB].transaction() as s:
        await s.execute(update(AuthToken).where(AuthToken.kind == "session")
                        .values(expires_at=utcnow() - timedelta(seconds=1)))
    assert (await client.get("/", allow_redirects=False)).status == 303
    assert (await client.get("/api/v1/me")).status == 401


async def test_static_files_are_served(client: TestClient) -> None:
    response = await client.get("/static/app.js")
    assert response.status == 200
    assert "EventSource" in await response.text()
    assert response.headers["X-Content-Type-Options"] == "nosniff"


# --- the token lookup on every request (no cache: each request sees the database as it is now) ----

async def test_a_deactivated_user_is_refused_on_the_very_next_request(client: TestClient, admin: Api,
                                                                     agent: Api) -> None:
    await agent.get("/api/v1/me")
    await admin.patch(f"/api/v1/users/{agent.id}", {"active": False})
    await agent.get("/api/v1/me", expect=401)
    await agent.get("/api/v1/identify", params={"phone": "+79161234567"}, expect=401)


async def test_a_deleted_token_or_session_stops_working_at_once(client: TestClient, app: web.Application,
                                                                 agent: Api) -> None:
    await browser_login(client, "agent")
    assert (await client.get("/", allow_redirects=False)).status == 200
    await agent.get("/api/v1/me")
    async with app[DB].transaction() as s:
        await s.execute(delete(AuthToken).where(AuthToken.user_id == agent.id))
    assert (await client.get("/", allow_redirects=False)).status == 303
    await agent.get("/api/v1/me", expect=401)


async def test_a_user_deactivated_behind_the_hubs_back_is_refused(client: TestClient, app: web.Application,
                                                                  agent: Api) -> None:
    # E.g. by the command line in another process: the token row stays, the user is inactive.
    await agent.get("/api/v1/me")
    async with app[DB].transaction() as s:
        await s.execute(update(User).where(User.id == agent.id).values(active=False))
    await agent.get("/api/v1/me", expect=401)


async def test_a_renamed_or_demoted_user_is_seen_on_the_next_request(client: TestClient, admin: Api,
                                                                     agent: Api) -> None:
    await admin.patch(f"/api/v1/users/{agent.id}", {"role": "manager", "name": "Иван Менеджеров"})
    me = await agent.get("/api/v1/me")
    assert me["role"] == "manager" and me["name"] == "Иван Менеджеров"


async def test_the_requests_user_is_detached_and_carries_no_password_hash(client: TestClient,
                                                                          app: web.Application) -> None:
    await make_user(app, "someone", "agent")
    raw = "a-token-for-someone"
    async with app[DB].transaction() as s:
        user = (await s.scalars(select(User).where(User.login == "someone"))).one()
        s.add(AuthToken(token_hash=hash_token(raw), user_id=user.id, kind="api", csrf_token="c"))
    request = make_mocked_request("GET", "/api/v1/me", app=app)
    found = await _lookup(request, hash_token(raw), "api")
    assert found is not None
    who, csrf = found.user, found.csrf_token
    assert (who.id, who.login, who.role, who.active, csrf) == (user.id, "someone", "agent", True, "c")
    assert who.created_at.tzinfo is not None
    assert inspect(who).detached
    with pytest.raises(DetachedInstanceError):
        _ = who.password_hash
    assert await _lookup(request, hash_token(raw), "session") is None
    assert await _lookup(request, hash_token(raw + "x"), "api") is None
