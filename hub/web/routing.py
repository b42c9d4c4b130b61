"""Routes that carry their own documentation.

Each API module keeps a ``routes = Routes("clients")`` table; its decorators register the handler and
record method, path, summary, parameters and schemas, from which ``hub.web.openapi`` writes the
OpenAPI document. A route cannot be added without saying what it is.

    @routes.get("/api/v1/clients/{id}", "Read a client", response=ref("Client"))
    async def get_client(request): ...

The document lists every status a route answers (the API tests check each answer against it):
``errors`` are the statuses answered with the usual ``{"error": ...}`` body, to which those every
route of its kind may answer are added (``implied_errors``); ``responses`` are the other answers
(``answer(...)``: a partial file, a health report with 503 ...).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Schema = dict[str, Any]


@dataclass(frozen=True)
class Param:
    """A query parameter. ``type``: string, integer, boolean, date-time or a JSON schema."""

    name: str
    type: str | Schema = "string"
    description: str = ""
    required: bool = False

    def schema(self) -> Schema:
        if isinstance(self.type, dict):
            return self.type
        if self.type == "date-time":
            return {"type": "string", "format": "date-time"}
        return {"type": self.type}


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    request: Schema | None = None
    response: Schema | None = None
    status: int = 200
    params: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()
    public: bool = False
    content_type: str = "application/json"
    responses: Mapping[int, Schema] = field(default_factory=dict)  # status → an OpenAPI response object


UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


def implied_errors(method: str, request: Schema | None, public: bool,
                   errors: Iterable[int]) -> tuple[int, ...]:
    """``errors`` and the statuses every route of this kind answers: 401 without a login (but a
    public route); 403 to a browser session's change without its CSRF token; 400 (not JSON), 413
    (over ``server.max_body_bytes``) and 422 (not an object) to a JSON body."""
    implied = set(errors)
    if not public:
        implied.add(401)
        if method in UNSAFE:
            implied.add(403)
    if request is not None:
        implied.update((400, 413, 422))
    return tuple(sorted(implied))


@dataclass
class Routes:
    tag: str
    specs: list[RouteSpec] = field(default_factory=list)

    def route(self, method: str, path: str, summary: str, *, request: Schema | None = None,
              response: Schema | None = None, status: int = 200, params: Iterable[Param] = (),
              errors: Iterable[int] = (), public: bool = False, content_type: str = "application/json",
              responses: Mapping[int, Schema] | None = None) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            if public:
                mark_public(handler)
            self.specs.append(RouteSpec(method, path, handler, summary, self.tag, request, response, status,
                                        tuple(params), implied_errors(method, request, public, errors),
                                        public, content_type, dict(responses or {})))
            return handler

        return register

    def get(self, path: str, summary: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, summary, **kwargs)

    def post(self, path: str, summary: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, summary, **kwargs)

    def patch(self, path: str, summary: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, summary, **kwargs)

    def delete(self, path: str, summary: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, summary, **kwargs)

    def add(self, method: str, path: str, handler: Handler, summary: str, **kwargs: Any) -> None:
        self.route(method, path, summary, **kwargs)(handler)

    def register(self, router: web.UrlDispatcher) -> None:
        for spec in self.specs:
            # GET routes answer HEAD too, except the event stream (aiohttp-sse wants GET).
            allow_head = spec.method == "GET" and spec.content_type != "text/event-stream"
            if spec.method == "GET":
                router.add_get(spec.path, spec.handler, allow_head=allow_head)
            else:
                router.add_route(spec.method, spec.path, spec.handler)


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def answer(description: str, schema: Schema | None = None, content_type: str = "application/json") -> Schema:
    """An OpenAPI response object, for ``responses=``: an answer that is neither the route's success nor
    the usual error body (no ``schema``: no body)."""
    response: Schema = {"description": description}
    if schema is not None:
        response["content"] = {content_type: {"schema": schema}}
    return response


BINARY: Schema = {"type": "string", "format": "binary"}


def file_answers(content_type: str) -> dict[int, Schema]:
    """What a file download (``web.FileResponse``) answers besides 200: a byte range, the conditional
    requests' answers, and a range past the end (no body; Content-Range says the size)."""
    return {
        206: answer("Partial content: the byte range asked for (Range)", BINARY, content_type),
        304: answer("Not modified (If-None-Match, If-Modified-Since)"),
        412: answer("Precondition failed (If-Match, If-Unmodified-Since)"),
        416: answer("Range not satisfiable (Content-Range: bytes */<size>)"),
    }


def page_of(name: str) -> Schema:
    return {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {"items": {"type": "array", "items": ref(name)},
                       "next_cursor": {"type": ["string", "null"]}},
    }


PAGING = (Param("cursor", description="next_cursor of the previous page"),
          Param("limit", "integer", "items per page, 1..200 (default 50)"))


def mark_public(handler: Handler) -> Handler:
    """Mark a handler as reachable without logging in."""
    # a function takes attributes, but no Callable type can declare one
    handler.__crmhub_public__ = True  # type: ignore[attr-defined]
    return handler


def is_public(handler: Any) -> bool:
    return bool(getattr(handler, "__crmhub_public__", False))
