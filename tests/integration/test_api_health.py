"""/healthz, and what every answer carries."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import create_async_engine

from hub.web.keys import CHANNELS, DB


async def test_healthz_reports_the_database(client: TestClient) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "database": "ok", "channels": {}}


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
