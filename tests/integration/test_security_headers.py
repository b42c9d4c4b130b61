"""Security finding 12 (headers): no HSTS when served over https, no Permissions-Policy, the
``Server:`` header telling aiohttp's version."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from hub.config import Config


async def test_every_answer_has_a_permissions_policy_and_no_server_version(client: TestClient) -> None:
    for path in ("/login", "/api/v1/me", "/static/app.js", "/no-such-page"):
        async with client.get(path) as response:
            assert "camera=()" in response.headers["Permissions-Policy"], path
            assert response.headers["Server"] == "CRM Hub", path
            assert "Strict-Transport-Security" not in response.headers  # public_url is http here


async def test_hsts_when_the_hub_is_served_over_https(config: Config, aiohttp_client: Any) -> None:
    from hub.app import create_app

    config.server.public_url = "https://crm.example.ru"
    client = await aiohttp_client(create_app(config))
    async with client.get("/login") as response:
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
