"""The OpenAPI document describes exactly the routes the application has."""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.test_utils import TestClient


def _is_api(path: str) -> bool:
    """Browser pages, their forms and files are not part of the JSON API."""
    return path.startswith(("/api/", "/webhooks/")) or path == "/healthz"


def _router_routes(app: web.Application) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path") or info.get("prefix")
        if route.method == "HEAD" or path is None or path.startswith("/static"):
            continue
        found.add((route.method, re.sub(r"{(\w+):[^}]+}", r"{\1}", path)))
    return found


async def test_every_route_is_documented_and_every_documented_route_exists(
        client: TestClient, app: web.Application) -> None:
    response = await client.get("/api/v1/openapi.json")
    assert response.status == 200
    document = await response.json()
    documented = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    served = {(method, path) for method, path in _router_routes(app) if _is_api(path)}
    assert served - documented == set(), "routes without documentation"
    assert documented - served == set(), "documented routes that do not exist"


async def test_document_is_openapi_3_1_with_resolvable_references(client: TestClient) -> None:
    document = await (await client.get("/api/v1/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    schemas = document["components"]["schemas"]
    references = set(re.findall(r'"\$ref": "#/components/schemas/(\w+)"', str(document).replace("'", '"')))
    assert references and references <= set(schemas)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["summary"], (method, path)
            assert operation["responses"], (method, path)
            for name in re.findall(r"{(\w+)}", path):
                assert any(p["in"] == "path" and p["name"] == name for p in operation["parameters"])


async def test_contract_rows_are_present(client: TestClient) -> None:
    paths = (await (await client.get("/api/v1/openapi.json")).json())["paths"]
    for resource in ("clients", "contacts", "leads", "deals", "tasks", "users", "pipelines"):
        assert set(paths[f"/api/v1/{resource}"]) == {"get", "post"}
        assert set(paths[f"/api/v1/{resource}/{{id}}"]) == {"get", "patch", "delete"}
    for target in ("deals", "clients", "leads"):
        assert "get" in paths[f"/api/v1/{target}/{{id}}/timeline"]
        assert "post" in paths[f"/api/v1/{target}/{{id}}/notes"]
    assert "post" in paths["/api/v1/leads/{id}/convert"]
    assert "post" in paths["/api/v1/deals/{id}/move"]
    assert "post" in paths["/api/v1/tasks/{id}/complete"]
    assert set(paths["/api/v1/notifications"]) == {"get", "delete"}
    assert "post" in paths["/api/v1/notifications/read"]
    assert "patch" in paths["/api/v1/timeline/{id}"]
    for path in ("/api/v1/identify", "/api/v1/me", "/api/v1/events", "/api/v1/auth/token", "/healthz"):
        assert path in paths
    list_params = {p["name"] for p in paths["/api/v1/clients"]["get"]["parameters"]}
    assert {"q", "manager", "tag", "cursor", "limit"} <= list_params
