"""Security findings 5, 8 and 11 through the app: the open redirect after login, the login limits
behind a reverse proxy (``[server] trusted_proxies``) with the admins' bell on a lockout burst, and
look-alike logins. Every address is a loopback one (127.0.0.0/8), as in all the tests."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from hub.config import Config
from hub.crm.models import Notification
from hub.web.keys import DB, LOGIN_LIMITER
from hub.web.ratelimit import ACCOUNT, PAIR, Limit
from tests.integration.conftest import PASSWORD, Api
from tests.integration.test_auth import browser_login


@pytest.fixture
def config(config: Config) -> Config:
    config.server.trusted_proxies = ["127.0.0.1"]
    return config


async def token(client: TestClient, login: str, password: str, client_ip: str) -> int:
    async with client.post("/api/v1/auth/token", json={"login": login, "password": password},
                           headers={"X-Forwarded-For": client_ip}) as response:
        return response.status


ELSEWHERE = ("/%09/evil.example", "/%0a/evil.example", "/%0d%0a/evil.example", "//evil.example",
             "/\\evil.example", "https://evil.example", "/%5Cevil.example")


async def test_no_open_redirect_after_login(client: TestClient, agent: Api) -> None:
    response = await browser_login(client, "agent", next_path=ELSEWHERE[0])
    assert response.status == 303 and response.headers["Location"] == "/", response.headers["Location"]
    for next_path in ELSEWHERE:  # logged in now: the login page sends on at once
        async with client.get(f"/login?next={next_path}", allow_redirects=False) as again:
            assert again.status == 303 and again.headers["Location"] == "/", next_path
    client.session.cookie_jar.clear()
    ok = await browser_login(client, "agent", next_path="/deals?view=list")
    assert ok.headers["Location"] == "/deals?view=list"


async def test_behind_a_proxy_each_client_is_counted_alone(client: TestClient, agent: Api) -> None:
    for _ in range(PAIR.failures):
        assert await token(client, "agent", "wrong-password", "127.2.0.7") == 401
    assert await token(client, "agent", PASSWORD, "127.2.0.7") == 429  # the guesser waits
    assert await token(client, "agent", PASSWORD, "127.2.0.8") == 200  # another client of the proxy: not


async def test_guessing_one_account_from_many_addresses_locks_it_and_rings_the_admins(
        client: TestClient, app: Any, admin: Api, agent: Api) -> None:
    account = Limit(failures=12, window=ACCOUNT.window, lock=ACCOUNT.lock)  # fewer hashes to compute
    app[LOGIN_LIMITER].set_limits(account=account)
    for i in range(account.failures):
        assert await token(client, "agent", "wrong-password", f"127.3.0.{i + 1}") == 401
    assert await token(client, "agent", PASSWORD, "127.3.1.1") == 429
    async with app[DB].reading() as s:
        bells = (await s.scalars(select(Notification).where(Notification.kind == "login_lockout"))).all()
    assert [(b.user_id, b.payload["lock"], b.payload["login"]) for b in bells] == [
        (admin.id, "account", "agent")]


async def test_look_alike_logins_cannot_be_created(admin: Api) -> None:
    body = {"name": "Двойник", "role": "admin", "password": "Длинный-пароль-2026"}
    for login, status, field in (("аdmin", 422, "login"), ("Admin", 409, "login"),
                                 ("ａｄｍｉｎ", 422, "login")):
        answer = await admin.post("/api/v1/users", {**body, "login": login}, expect=status)
        assert field in answer["error"]["fields"], (login, answer)
    await admin.post("/api/v1/users", {**body, "login": "admin2"}, expect=201)
