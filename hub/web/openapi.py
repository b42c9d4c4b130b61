"""The OpenAPI 3.1 document, written from the route tables kept next to the routes."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from hub.web.api.common import ok
from hub.web.api.schemas import COMPONENTS
from hub.web.errors import HTTP_CODES
from hub.web.keys import OPENAPI
from hub.web.routing import Routes, RouteSpec, ref

routes = Routes("meta")

_PATH_PARAM = re.compile(r"{(\w+)}")


def _operation(spec: RouteSpec) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": spec.summary,
        "operationId": f"{spec.method.lower()}_{spec.handler.__name__}_{_slug(spec.path)}",
        "tags": [spec.tag],
    }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
        for name in _PATH_PARAM.findall(spec.path)
    ]
    parameters += [
        {"name": p.name, "in": "query", "required": p.required, "description": p.description,
         "schema": p.schema()}
        for p in spec.params
    ]
    if parameters:
        operation["parameters"] = parameters
    if spec.request is not None:
        operation["requestBody"] = {"required": True,
                                    "content": {"application/json": {"schema": spec.request}}}
    success: dict[str, Any] = {"description": "OK" if spec.status != 201 else "Created"}
    if spec.status == 204:
        success["description"] = "No content"
    elif spec.response is not None:
        success["content"] = {spec.content_type: {"schema": spec.response}}
    responses: dict[str, Any] = {str(spec.status): success}
    for status in spec.errors:
        responses[str(status)] = {"description": HTTP_CODES.get(status, "error").replace("_", " "),
                                  "content": {"application/json": {"schema": ref("Error")}}}
    for status, response in spec.responses.items():
        responses[str(status)] = response
    operation["responses"] = dict(sorted(responses.items()))
    operation["security"] = [] if spec.public else [{"bearer": []}, {"session": []}]
    return operation


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", path.lower()).strip("_")


def build_document(tables: Iterable[Routes], *, title: str = "CRM Hub", version: str = "1") -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for table in tables:
        for spec in table.specs:
            paths.setdefault(spec.path, {})[spec.method.lower()] = _operation(spec)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "Every route of the hub. Errors are {\"error\": {code, message, fields}}."},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": COMPONENTS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "a token from POST /api/v1/auth/token"},
                "session": {"type": "apiKey", "in": "cookie", "name": "crmhub_session",
                            "description": "the browser's session; changes need the X-CSRF-Token header"},
            },
        },
    }


DOCUMENT = {"type": "object", "required": ["openapi", "info", "paths", "components"],
            "description": "an OpenAPI 3.1 document (https://spec.openapis.org/oas/v3.1.0)",
            "properties": {"openapi": {"type": "string"},
                           **{name: {"type": "object", "additionalProperties": True}
                              for name in ("info", "paths", "components")}}}


@routes.get("/api/v1/openapi.json", "This document", response=DOCUMENT, public=True)
async def openapi_json(request: web.Request) -> web.Response:
    return ok(request.app[OPENAPI])
