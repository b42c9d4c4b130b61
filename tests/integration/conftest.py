"""The whole application over real HTTP, on each test database.

    async def test_x(admin: Api, agent: Api) -> None:
        client = await admin.post("/api/v1/clients", {"name": "ООО Ромашка"}, expect=201)
        await agent.get(f"/api/v1/clients/{client['id']}", expect=404)
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hub.config import Config

MAX_BODY = 64 * 1024
PASSWORD = "s3cret-pass"
_NO_BODY = object()


@pytest.fixture
def config(config: Config) -> Config:
    config.server.max_body_bytes = MAX_BODY
    return config


@pytest.fixture
def app(config: Config) -> web.Application:
    from hub.app import create_app  # imported here: the core's own tests share this folder

    return create_app(config)


@pytest.fixture
async def client(app: web.Application, aiohttp_client: Any) -> TestClient:
    return await aiohttp_client(app)


async def until(condition: Callable[[], Any], within: float = 15.0, interval: float = 0.02) -> Any:
    """Wait for ``condition()`` (sync or async) to be truthy and return it; fail after ``within`` s
    (generous: a wait costs only what it takes, and the shared 2-core box is sometimes slow)."""
    async with asyncio.timeout(within):
        while True:
            value = condition()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            await asyncio.sleep(interval)


@dataclass
class Api:
    """A logged-in API caller: ``await api.get(path, expect=200)`` returns the JSON body."""

    client: TestClient
    token: str
    user: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> int:
        return int(self.user["id"])

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **self.headers}

    async def call(self, method: str, path: str, body: Any = _NO_BODY, *, expect: int | None = 200,
                   params: dict[str, str] | None = None, raw: bytes | str | None = None) -> Any:
        kwargs: dict[str, Any] = {"headers": self.auth(), "params": params}
        if raw is not None:
            kwargs["data"] = raw
            kwargs["headers"] = {**kwargs["headers"], "Content-Type": "application/json"}
        elif body is not _NO_BODY:
            kwargs["data"] = json.dumps(body)
            kwargs["headers"] = {**kwargs["headers"], "Content-Type": "application/json"}
        async with self.client.request(method, path, **kwargs) as response:
            text = await response.text()
            if expect is not None:
                assert response.status == expect, f"{method} {path}: {response.status} {text[:2000]}"
            if response.status >= 500:
                raise AssertionError(f"{method} {path}: server error {response.status} {text[:2000]}")
            return json.loads(text) if text and response.content_type == "application/json" else None

    async def get(self, path: str, *, expect: int | None = 200, params: dict[str, str] | None = None) -> Any:
        return await self.call("GET", path, expect=expect, params=params)

    async def post(self, path: str, body: Any = _NO_BODY, *, expect: int | None = 200, **kw: Any) -> Any:
        return await self.call("POST", path, body, expect=expect, **kw)

    async def patch(self, path: str, body: Any = _NO_BODY, *, expect: int | None = 200, **kw: Any) -> Any:
        return await self.call("PATCH", path, body, expect=expect, **kw)

    async def delete(self, path: str, *, expect: int | None = 204, **kw: Any) -> Any:
        return await self.call("DELETE", path, expect=expect, **kw)


async def make_user(app: web.Application, login: str, role: str, name: str | None = None,
                    extensions: list[str] | None = None) -> None:
    from hub.crm import users
    from hub.web.keys import DB

    async with app[DB].transaction() as s:
        await users.create_or_update_user(s, login, PASSWORD, role, name=name or login.title(),
                                          extensions=extensions)


async def login_api(client: TestClient, login: str, password: str = PASSWORD) -> Api:
    async with client.post("/api/v1/auth/token", json={"login": login, "password": password}) as response:
        body = await response.json()
        assert response.status == 200, body
    return Api(client, body["token"], body["user"])


MakeApi = Callable[..., Awaitable[Api]]


@pytest.fixture
def make_api(client: TestClient, app: web.Application) -> MakeApi:
    async def make(login: str, role: str = "agent", name: str | None = None,
                   extensions: list[str] | None = None) -> Api:
        await make_user(app, login, role, name, extensions)
        return await login_api(client, login)

    return make


@pytest.fixture
async def admin(make_api: MakeApi) -> Api:
    return await make_api("admin", "admin", "Анна Админова")


@pytest.fixture
async def manager(make_api: MakeApi) -> Api:
    return await make_api("manager", "manager", "Мария Менеджерова")


@pytest.fixture
async def agent(make_api: MakeApi) -> Api:
    return await make_api("agent", "agent", "Иван Агентов", ["101"])


@pytest.fixture
async def agent2(make_api: MakeApi) -> Api:
    return await make_api("agent2", "agent", "Пётр Второв", ["102"])
