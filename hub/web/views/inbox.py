"""``/inbox``: conversations across channels newest first (filters: all, unread, mine, unassigned;
channel), and the chosen one's chat panel (bubbles, delivery statuses, retry, files, the composer
that posts to ``POST /api/v1/messages``, the assignment). Live: the list refreshes on
``message.received`` / ``conversation.updated``, the panel on its conversation's events
(``messages.js`` decides which events are for it).

``GET /inbox/list`` (the list alone, or the next rows with ``cursor``) and ``GET /inbox/c/{id}`` (the
panel alone; with ``cursor``, only the older messages for "show older") serve htmx;
``POST /inbox/c/{id}/assign`` assigns (a plain form works without JS). An e-mail conversation's
composer answers its latest letter (``reply_to``, subject "Re: …"); a conversation that belongs to
nobody (letters kept out of the timeline) lists its messages and offers "Create a lead"
(``POST /api/v1/conversations/{id}/lead``, ``messages.js``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from hub.crm import deal_card, inbox
from hub.crm.errors import NotFound, ValidationError
from hub.web.errors import path_id, query_text
from hub.web.i18n import N_
from hub.web.keys import CHANNELS, DB
from hub.web.views.common import is_htmx, render, require_user
from hub.web.views.compose import channel_connected, whatsapp_state

PAGE = 30
MESSAGES = 50
FILTERS = (("all", N_("All")), ("unread", N_("Unread")), ("mine", N_("Mine")), ("none", N_("Unassigned")))
CHANNEL_FILTERS = (("", N_("All channels")), ("telegram", N_("Telegram")), ("sms", N_("SMS")),
                   ("whatsapp", N_("WhatsApp")), ("email", N_("E-mail")))
CHANNEL_LABELS = {"telegram": N_("Telegram"), "sms": N_("SMS"), "whatsapp": N_("WhatsApp"),
                  "email": N_("E-mail")}


def _query(request: web.Request) -> dict[str, str]:
    q = request.query
    f = q.get("f", "all")
    channel = q.get("channel", "")
    c = q.get("c", "")
    return {"f": f if f in dict(FILTERS) else "all",
            "channel": channel if channel in dict(CHANNEL_FILTERS) else "",
            "c": c if c.isdecimal() and len(c) < 19 else ""}


def _href(query: dict[str, str], **change: str) -> str:
    merged = {**query, **change}
    return "/inbox?" + urlencode({k: v for k, v in merged.items() if v})


async def _list(request: web.Request, query: dict[str, str], cursor: str | None = None) -> Any:
    user = require_user(request)
    filters: dict[str, Any] = {"channel": query["channel"] or None}
    if query["f"] == "unread":
        filters["unread"] = True
    elif query["f"] == "mine":
        filters["assignee"] = "me"
    elif query["f"] == "none":
        filters["assignee"] = "none"
    async with request.app[DB].reading() as s:
        try:
            return await inbox.list_conversations(s, user, **filters, cursor=cursor, limit=PAGE)
        except ValidationError:
            return await inbox.list_conversations(s, user, **filters, limit=PAGE)


async def _panel(request: web.Request, conversation_id: int,
                 cursor: str | None = None) -> dict[str, Any] | None:
    user = require_user(request)
    async with request.app[DB].reading() as s:
        try:
            conversation = await inbox.get_conversation(s, user, conversation_id, limit=MESSAGES,
                                                        cursor=cursor)
        except (NotFound, ValidationError):
            return None
        users = await deal_card.responsible_choices(s)
        whatsapp = (await whatsapp_state(request, s, conversation_id)
                    if conversation["channel"] == "whatsapp" else None)
    return {"conversation": conversation, "users": users, "whatsapp": whatsapp,
            "connected": channel_connected(request.app[CHANNELS], conversation["channel"])}


def _context(query: dict[str, str], page: Any, panel: dict[str, Any] | None) -> dict[str, Any]:
    selected = int(query["c"]) if query["c"] else None
    list_query = {k: v for k, v in query.items() if v}
    return {
        "query": query, "page": page, "panel": panel, "selected": selected,
        "filters": FILTERS, "channel_filters": CHANNEL_FILTERS, "channel_labels": CHANNEL_LABELS,
        "href": lambda **change: _href(query, **change),
        "list_url": "/inbox/list" + ("?" + urlencode(list_query) if list_query else ""),
        "more_url": ("/inbox/list?" + urlencode({**list_query, "cursor": page.next_cursor})
                     if page.next_cursor else None),
    }


HEALTHY = ("webhook", "polling", "ready", "idle", "connected")
# A channel's state as a word of the reader's language; the adapter's own text (a state and, after
# a colon, what went wrong) stays in the tooltip, where an administrator finds the details.
STATE_WORDS = {"webhook": N_("receiving (webhook)"), "polling": N_("receiving (polling)"),
               "ready": N_("ready"), "idle": N_("waiting for letters"), "connected": N_("connected"),
               "connecting": N_("connecting"), "starting": N_("starting"), "stopped": N_("stopped"),
               "error": N_("error"), "auth_failed": N_("login refused"), "misconfigured": N_("misconfigured"),
               "smtp_failed": N_("sending fails"), "disconnected": N_("disconnected")}


def channel_states(channels: dict[str, Any]) -> list[dict[str, Any]]:
    """The messaging channels' states for the page head (Telegram, SMS, each mailbox)."""
    states = []
    for name, state in sorted(channels.items()):
        if name == "asterisk":
            continue
        text = state()
        label = name.partition(":")[2] if name.startswith("mail:") else CHANNEL_LABELS.get(name, name)
        code = text.split(":")[0].strip()
        states.append({"name": name, "label": label, "state": text, "word": STATE_WORDS.get(code),
                       "ok": code in HEALTHY, "mail": name.startswith("mail:")})
    return states


async def inbox_page(request: web.Request) -> web.Response:
    require_user(request)
    query = _query(request)
    page = await _list(request, query)
    panel = await _panel(request, int(query["c"])) if query["c"] else None
    context = _context(query, page, panel)
    context["channels"] = channel_states(request.app[CHANNELS])
    return await render(request, "inbox.html", context)


async def channels_fragment(request: web.Request) -> web.Response:
    """The page head's channel states again (the page polls it: states change without an event)."""
    require_user(request)
    return await render(request, "_channel_states.html", {"channels": channel_states(request.app[CHANNELS])})


async def inbox_list(request: web.Request) -> web.Response:
    require_user(request)
    query = _query(request)
    cursor = query_text(request, "cursor", max_len=200)
    page = await _list(request, query, cursor)
    template = "_inbox_rows.html" if cursor else "_inbox_list.html"
    return await render(request, template, _context(query, page, None))


async def chat_panel(request: web.Request) -> web.Response:
    require_user(request)
    conversation_id = path_id(request)
    cursor = query_text(request, "cursor", max_len=200)
    panel = await _panel(request, conversation_id, cursor)
    if panel is None:
        raise web.HTTPNotFound()
    template = "_chat_older.html" if cursor else "_chat_panel.html"
    return await render(request, template, {"panel": panel, "channel_labels": CHANNEL_LABELS})


async def assign(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    conversation_id = path_id(request)
    form = await request.post()
    raw = form.get("assignee_id", "")
    value: Any = int(raw) if isinstance(raw, str) and raw.isdecimal() and len(raw) < 19 else None
    async with request.app[DB].transaction() as s:
        await inbox.assign(s, user, conversation_id, {"assignee_id": value})
    if not is_htmx(request):
        raise web.HTTPSeeOther(f"/inbox?c={conversation_id}")
    return await chat_panel(request)


def register_views(router: web.UrlDispatcher) -> None:
    router.add_get("/inbox", inbox_page)
    router.add_get("/inbox/list", inbox_list)
    router.add_get("/inbox/channels", channels_fragment)
    router.add_get(r"/inbox/c/{id:\d+}", chat_panel)
    router.add_post(r"/inbox/c/{id:\d+}/assign", assign)
