"""The front-end libraries come from npm (hub/webui/node_modules) and are served under /static/vendor/."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hub.web import vendor

WEBUI = Path(__file__).resolve().parents[2] / "hub" / "webui"


def test_versions_are_pinned_exactly_and_locked() -> None:
    package = json.loads((WEBUI / "package.json").read_text())
    lock = json.loads((WEBUI / "package-lock.json").read_text())
    deps = package["dependencies"]
    assert set(deps) == {"htmx.org", "htmx-ext-sse", "sortablejs", "chart.js"}
    assert all(v[0].isdigit() for v in deps.values()), deps  # no ^ or ~ ranges
    assert deps["htmx.org"].startswith("2.0.") and deps["htmx-ext-sse"].startswith("2.2.")
    for name, version in deps.items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_vendor_files_are_served(client: TestClient) -> None:
    if vendor.missing(WEBUI / "node_modules"):
        pytest.skip("hub/webui/node_modules is not installed (scripts/setup installs it)")
    for name in vendor.FILES:
        async with client.get(f"/static/vendor/{name}") as response:
            assert response.status == 200, name
            assert response.content_type == "application/javascript"
            assert len(await response.read()) > 1000
    async with client.get("/static/vendor/package.json") as response:
        assert response.status == 404


async def test_missing_node_modules_is_logged_and_answers_404(tmp_path: Path, aiohttp_client, caplog) -> None:
    app = web.Application()
    with caplog.at_level(logging.WARNING, "hub.web.vendor"):
        vendor.setup(app.router, tmp_path / "node_modules")
    assert "npm ci --prefix hub/webui" in caplog.text
    client = await aiohttp_client(app)
    async with client.get("/static/vendor/htmx.min.js") as response:
        assert response.status == 404
        assert "scripts/setup" in await response.text()
