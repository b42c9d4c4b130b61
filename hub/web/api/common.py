"""What every JSON route does the same way: answer JSON, and the five routes of a plain resource.

A resource's routes only parse, authorise (``request[USER]``), call the core service in one unit
of work, and answer; the core decides everything else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from hub.crm.paging import Page
from hub.web import export
from hub.web.answer import json_answer
from hub.web.api.schemas import partial
from hub.web.errors import json_body, path_id, query_int, query_text
from hub.web.export import Column
from hub.web.keys import CONFIG, DB, USER
from hub.web.routing import BINARY, PAGING, Param, Routes, page_of, ref

Service = Callable[..., Awaitable[Any]]
NOT_FOUND_ERRORS = (401, 404)
WRITE_ERRORS = (400, 401, 403, 404, 409, 413, 422)


def ok(data: Any, status: int = 200) -> web.Response:
    if isinstance(data, Page):
        data = data.as_dict()
    return json_answer(data, status)


def no_content() -> web.Response:
    return web.Response(status=204)


def region(request: web.Request) -> str:
    return request.app[CONFIG].phones.default_region


@dataclass(frozen=True)
class Filter:
    """A list filter: the query parameter, the service's keyword, and how to read it."""

    param: Param
    arg: str
    read: Callable[[web.Request, str], Any] = query_text


def paging(request: web.Request) -> dict[str, Any]:
    return {"cursor": query_text(request, "cursor", max_len=200), "limit": query_int(request, "limit")}


@dataclass(frozen=True)
class Resource:
    """``/api/v1/<plural>`` and ``/api/v1/<plural>/{id}`` over a core module's five functions."""

    plural: str
    schema: str
    create: Service
    get: Service
    update: Service
    delete: Service
    list: Service
    request_schema: dict[str, Any]
    filters: tuple[Filter, ...] = ()
    regional: tuple[str, ...] = ()  # which of create, update, list take the phone region
    paged: bool = True  # lists of few things (pipelines) come in one page
    export: tuple[Column, ...] = ()  # the list as a file (``/export``): its columns

    def register(self, routes: Routes) -> None:
        one = self.schema.lower()
        base, item = f"/api/v1/{self.plural}", f"/api/v1/{self.plural}/{{id}}"
        routes.add("GET", base, self._list, f"List {self.plural}", response=page_of(self.schema),
                   params=(*(f.param for f in self.filters), *(PAGING if self.paged else ())),
                   errors=(401, 422))
        if self.export:
            routes.add("GET", f"{base}/export", self._export,
                       f"The list of {self.plural} as a file, filtered as the list is",
                       params=(*(f.param for f in self.filters), export.FORMAT_PARAM), errors=(401, 422),
                       response=BINARY, content_type=export.FORMATS["xlsx"], responses=export.ANSWERS)
        routes.add("POST", base, self._create, f"Create a {one}", request=self.request_schema,
                   response=ref(self.schema), status=201, errors=WRITE_ERRORS)
        routes.add("GET", item, self._get, f"Read a {one}", response=ref(self.schema),
                   errors=NOT_FOUND_ERRORS)
        routes.add("PATCH", item, self._update, f"Change some fields of a {one}",
                   request=partial(self.request_schema), response=ref(self.schema), errors=WRITE_ERRORS)
        routes.add("DELETE", item, self._delete, f"Delete a {one}", status=204, errors=(401, 403, 404, 409))

    def _region(self, request: web.Request, operation: str) -> dict[str, Any]:
        return {"region": region(request)} if operation in self.regional else {}

    async def _list(self, request: web.Request) -> web.Response:
        filters = {f.arg: f.read(request, f.param.name) for f in self.filters}
        async with request.app[DB].reading() as s:
            if self.paged:
                filters.update(paging(request))
            page = await self.list(s, request[USER], **filters, **self._region(request, "list"))
        return ok(page)

    async def _export(self, request: web.Request) -> web.Response:
        filters = {f.arg: f.read(request, f.param.name) for f in self.filters}
        return await export.respond(request, self.plural, self.export, self.list,
                                    {**filters, **self._region(request, "list")})

    async def _create(self, request: web.Request) -> web.Response:
        data = await json_body(request)
        async with request.app[DB].transaction() as s:
            created = await self.create(s, request[USER], data, **self._region(request, "create"))
        return ok(created, 201)

    async def _get(self, request: web.Request) -> web.Response:
        async with request.app[DB].reading() as s:
            return ok(await self.get(s, request[USER], path_id(request)))

    async def _update(self, request: web.Request) -> web.Response:
        obj_id = path_id(request)
        data = await json_body(request)
        async with request.app[DB].transaction() as s:
            updated = await self.update(s, request[USER], obj_id, data, **self._region(request, "update"))
        return ok(updated)

    async def _delete(self, request: web.Request) -> web.Response:
        obj_id = path_id(request)
        async with request.app[DB].transaction() as s:
            await self.delete(s, request[USER], obj_id)
        return no_content()
