"""/healthz, and what every answer carries."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import create_async_engine

from hub.config import Config
from hub.web.keys import CHANNELS, DB
from tests.integration.conftest import Api


async def test_healthz_reports_the_database(client: TestClient) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "database": "ok", "channels": {}}


async def test_healthz_details_only_for_an_admin_or_from_this_machine(
        client: TestClient, app: web.Application, admin: Api, agent: Api) -> None:
    """Security finding 12: /healthz told anybody the channels' errors (configuration names)."""
    app[CHANNELS]["telegram"] = lambda: "auth_failed: Unauthorized"
    proxied = {"X-Forwarded-For": "127.2.0.7"}  # through a reverse proxy (loopback here, as in every test)
    detailed = {"status": "ok", "database": "ok", "channels": {"telegram": "auth_failed: Unauthorized"}}
    for headers, expected in ((proxied, {"status": "ok"}), ({**proxied, **agent.auth()}, {"status": "ok"}),
                              ({**proxied, **admin.auth()}, detailed), ({}, detailed)):
        async with client.get("/healthz", headers=headers) as response:
            assert response.status == 200 and await response.json() == expected, headers


async def test_healthz_is_503_when_the_database_is_down(client: TestClient, app: web.Application) -> None:
    app[CHANNELS]["asterisk"] = lambda: "connected"
    working = app[DB].engine
    app[DB].engine = create_async_engine("sqlite+aiosqlite:////proc/no-such-dir/crmhub.db")
    try:
        response = await client.get("/healthz")
        assert response.status == 503
        assert await response.json() == {"status": "error", "database": "error",
                                         "channels": {"asterisk": "connected"}}
    finally:
        await app[DB].engine.dispose()
        app[DB].engine = working


async def test_json_answers_carry_security_headers(client: TestClient) -> None:
    response = await client.get("/api/v1/me")
    assert response.status == 401
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Type"].startswith("application/json")


async def test_a_bug_is_a_logged_json_500_without_details(config: Config, aiohttp_client: Any,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    from hub.app import create_app
    from hub.web.routing import mark_public

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals")

    app = create_app(config)
    app.router.add_get("/api/v1/broken", mark_public(broken))
    client = await aiohttp_client(app)
    response = await client.get("/api/v1/broken")
    assert response.status == 500
    body = await response.json()
    assert body == {"error": {"code": "internal", "message": "internal server error", "fields": {}}}
    assert "secret internals" not in await response.text()
    assert any("unexpected error on GET /api/v1/broken" in r.getMessage() for r in caplog.records)
