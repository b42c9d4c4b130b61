"""``GET /api/v1/search``: one search over people, deals, tasks, messages, letters, calls and notes."""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web

from hub.crm import finder
from hub.crm import search_query as sq
from hub.crm.errors import ValidationError
from hub.web.api.common import ok
from hub.web.errors import query_int, query_text
from hub.web.keys import DB, USER
from hub.web.routing import Param, Routes

routes = Routes("search")

HIT = {
    "type": "object",
    "required": ["kind", "id", "title", "snippet", "url"],
    "properties": {
        "kind": {"type": "string", "enum": list(sq.KINDS)},
        "id": {"type": "integer", "description": "the client's, contact's, lead's, deal's, task's or "
               "timeline entry's id"},
        "title": {"type": "string", "description": "its name; for an entry, what it is on"},
        "snippet": {"type": "string", "description": "what matched: a phone, an e-mail, a piece of text"},
        "url": {"type": "string", "description": "its page in the web UI"},
    },
}
SEARCH_OUT = {"type": "object", "required": ["items"],
              "properties": {"items": {"type": "array", "items": HIT}}}


async def hits(request: web.Request, limit: int) -> list[finder.Hit]:
    """The search the request asks for (``q``, ``kind``), as the logged-in user may see it."""
    if "q" not in request.query:
        raise ValidationError({"q": "is required"})
    q = query_text(request, "q", max_len=sq.MAX_QUERY)
    kinds = finder.parse_kinds(query_text(request, "kind"))
    if q is None:
        return []
    async with request.app[DB].reading() as s:
        return await finder.search(s, request[USER], q, kinds, limit)


@routes.get("/api/v1/search", "Search clients, contacts, leads, deals, tasks, messages, letters, calls and "
            "notes (what the caller may see), grouped by kind, newest first",
            response=SEARCH_OUT, errors=(401, 422),
            params=(Param("q", description="words (any form of a Russian word; ё = е), a fragment of a "
                          "name, of a phone number (4+ digits, separators ignored) or of an e-mail",
                          required=True),
                    Param("kind", description="only these kinds, comma-separated: "
                          + ", ".join(sq.KINDS)),
                    Param("limit", "integer", f"at most this many of each kind (default "
                          f"{finder.DEFAULT_LIMIT}, at most {finder.MAX_LIMIT})")))
async def search(request: web.Request) -> web.Response:
    limit = query_int(request, "limit", maximum=finder.MAX_LIMIT) or finder.DEFAULT_LIMIT
    return ok({"items": [asdict(hit) for hit in await hits(request, limit)]})
