"""Who is free without telephony ([asterisk] host unset): everybody is unavailable, the panel says why."""

from __future__ import annotations

from tests.integration.conftest import MakeApi
from tests.integration.test_presence import states


async def test_without_telephony_everybody_is_unavailable_and_the_panel_says_why(
        make_api: MakeApi) -> None:
    ivan = await make_api("ivan", "agent", "Иван Петров", ["101"])
    assert await states(ivan) == {"101": "unavailable"}
    page = await ivan.client.get("/presence", headers=ivan.auth())
    assert 'data-testid="presence-none"' in await page.text()


async def test_presence_needs_authentication(make_api: MakeApi) -> None:
    api = await make_api("ivan", "agent", "Иван Петров", ["101"])
    response = await api.client.get("/api/v1/presence")
    assert response.status == 401


