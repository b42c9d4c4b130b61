"""The whole application over real HTTP, on each test database.

    async def test_x(admin: Api, agent: Api) -> None:
        client = await admin.post("/api/v1/clients", {"name": "ООО Ромашка"}, expect=201)
        await agent.get(f"/api/v1/clients/{client['id']}", expect=404)

Every answer of the API (``/api/``, ``/webhooks/``, ``/healthz``) through the ``client`` fixture, an
``Api`` or ``login_api`` is checked against the app's own OpenAPI document (tests/openapi_check.py):
an undeclared status or operation, or a JSON body that breaks the declared schema (a property the
schema does not declare included), fails the test.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from hub.config import Config
from tests.openapi_check import ResponseChecker

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
    return checked(await aiohttp_client(app))


_CHECKERS: dict[str, ResponseChecker] = {}  # by the document's text: one per distinct document
_CHECKED = "_crmhub_openapi_checked"


def _api_surface(path: str) -> bool:
    return path.startswith(("/api/", "/webhooks/")) or path == "/healthz"


def _checker(app: web.Application) -> ResponseChecker:
    """The app's published document (as /api/v1/openapi.json serves it), compiled once per text."""
    from hub.web.keys import OPENAPI

    text = json.dumps(app[OPENAPI], ensure_ascii=False, default=str)
    if text not in _CHECKERS:
        _CHECKERS[text] = ResponseChecker(json.loads(text))
    return _CHECKERS[text]


def checked(client: TestClient) -> TestClient:
    """Make ``client`` check each API response against its app's OpenAPI document (idempotent)."""
    if getattr(client, _CHECKED, False):
        return client
    app = getattr(client.server, "app", None)
    if app is None:
        return client
    original = client._request
    found: list[ResponseChecker] = []

    async def request(method: str, path: Any, **kwargs: Any) -> ClientResponse:
        response = await original(method, path, **kwargs)
        if _api_surface(response.url.raw_path):
            if not found:
                found.append(_checker(app))
            await _check(found[0], response)
        return response

    client._request = request  # type: ignore[method-assign]
    setattr(client, _CHECKED, True)
    return client


async def _check(checker: ResponseChecker, response: ClientResponse) -> None:
    content_type = response.content_type if response.headers.get("Content-Type") else ""
    if content_type == "application/json" or content_type.endswith("+json"):
        body = await response.read()  # kept: the test reads it again
    else:  # not read: a stream or a file the test may read piece by piece
        empty = response.method == "HEAD" or response.content_length == 0 or response.status in (204, 304)
        body = b"" if empty else b"..."
    problems = checker.problems(response.method, response.url.raw_path, response.status, content_type, body)
    if problems:
        response.release()
        raise AssertionError(
            f"{response.method} {response.url.raw_path} answered {response.status}, which "
            "/api/v1/openapi.json does not describe:\n  " + "\n  ".join(problems))


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

    def __post_init__(self) -> None:
        checked(self.client)

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
    checked(client)
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
