"""The timeline of a deal, client or lead as a reusable piece of a card.

A card's view merges ``await timeline_fragment(request, "deal", deal_id)`` into its context and its
template says ``{% include "_timeline.html" %}``: the note composer (text, a file, Ctrl+Enter), the
filter chips, the pinned entries on top, the entries newest first with "show more", pin/unpin, and
live refresh on ``timeline.added`` / ``timeline.updated`` for this target (``deal_card.js``).

The routes here serve the piece's own requests (htmx, or plain forms without JavaScript):
``GET /timeline/{deals|clients|leads}/{id}`` (the box; with ``cursor`` only the next entries),
``POST …/notes`` (multipart: ``text``, optional ``file``) and ``POST …/entries/{entry}/pin``.
"""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from hub.crm import attachments, deal_card, timeline
from hub.crm.errors import ValidationError
from hub.web import i18n
from hub.web.api.attachments import upload_name
from hub.web.errors import path_id
from hub.web.i18n import N_
from hub.web.keys import CONFIG, DB, SESSION
from hub.web.views.common import is_htmx, require_user
from hub.web.views.compose import compose_context

PAGE = 30
PLURALS = {"deal": "deals", "client": "clients", "lead": "leads"}
TARGETS = {plural: target for target, plural in PLURALS.items()}
# Filter chips: the query value, its label, the kinds it shows.
FILTERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("all", N_("All"), ()),
    ("calls", N_("Calls"), ("call",)),
    ("messages", N_("Messages"), ("sms", "whatsapp", "telegram")),
    ("emails", N_("E-mails"), ("email",)),
    ("notes", N_("Notes"), ("note",)),
    ("stages", N_("Stages"), ("stage_change",)),
    ("tasks", N_("Tasks"), ("task",)),
)
KIND_LABELS = {
    "call": N_("Phone call"), "sms": N_("SMS"), "whatsapp": N_("WhatsApp"), "telegram": N_("Telegram"),
    "email": N_("E-mail"),
    "note": N_("Note"), "stage_change": N_("Stage change"), "task": N_("Task"), "system": N_("System"),
}
# The core's reasons, as the reader should read them next to a field.
REASONS = {
    "is required": N_("Required."),
    "must be a number": N_("Enter a number."),
    "must be a non-negative amount below 10^13": N_("Enter an amount from 0 to 10 000 000 000 000."),
    "must have at most two decimal places": N_("At most two digits after the comma."),
    "is empty": N_("The file is empty."),
    "is required when a deal is lost": N_("Say why the deal is lost."),
    "must be an ISO 8601 date and time": N_("Enter a date and time."),
    "no such active user": N_("No such active user."),
    "is not a contact person of the deal's client": N_("Not a contact person of this client."),
    "must be one of the field's choices": N_("Choose one of the values."),
    "must be a date YYYY-MM-DD": N_("Enter a date."),
    "must not be empty": N_("Required."),
    "must not be in the past": N_("This moment has passed: choose a later one."),
    "must be empty when the deal is closed": N_("A won or lost deal has no next interaction."),
}


def filter_kinds(key: str | None) -> tuple[str, list[str] | None]:
    for name, _label, kinds in FILTERS:
        if name == key:
            return name, list(kinds) or None
    return "all", None


def reason(text: str) -> dict[str, str]:
    """A core validation reason as a msgid for the template to say in the reader's language
    (``{{ _(e.msg, n=e.n) }}``); unknown reasons stay as they are."""
    if text in REASONS:
        return {"msg": REASONS[text], "n": ""}
    if text.startswith("must be at most ") and text.endswith(" characters"):
        return {"msg": N_("Too long: at most %(n)s characters."), "n": text.split()[4]}
    if text.startswith("is larger than "):
        return {"msg": N_("The file is too large."), "n": ""}
    return {"msg": text.replace("%", "%%"), "n": ""}


def reasons(exc: ValidationError) -> dict[str, dict[str, str]]:
    return {name: reason(value) for name, value in exc.fields.items()}


async def timeline_fragment(request: web.Request, target: str, target_id: int, *,
                            tl: str | None = None) -> dict[str, Any]:
    """The context of ``_timeline.html`` for a card (``{"timeline": {...}}``): the first page (or the
    page after ``?cursor=``) filtered by ``?tl=`` (all, calls, messages, emails, notes, stages,
    tasks; a form's own ``tl`` may be given), and the pinned entries. Raises NotFound when the user
    may not see the target."""
    user = require_user(request)
    key, kinds = filter_kinds(tl or request.query.get("tl"))
    cursor = request.query.get("cursor") or None
    async with request.app[DB].reading() as s:
        page = await timeline.list_timeline(s, user, target, target_id, kinds=kinds, cursor=cursor,
                                            limit=PAGE)
        pinned = [] if cursor else await deal_card.pinned_entries(s, user, target, target_id, kinds=kinds)
    base = f"/timeline/{PLURALS[target]}/{target_id}"
    compose = await compose_context(request, target, target_id)
    return {"timeline": {"compose": compose,
        "target": target, "target_id": target_id, "base": base, "filter": key,
        "filters": [(name, label) for name, label, _ in FILTERS], "kind_labels": KIND_LABELS,
        "items": page.items, "next_cursor": page.next_cursor, "pinned": pinned,
        "more_url": f"{base}?tl={key}&cursor={page.next_cursor}" if page.next_cursor else None,
    }}


def _target(request: web.Request) -> tuple[str, int]:
    target = TARGETS.get(request.match_info["target"])
    if target is None:
        raise web.HTTPNotFound()
    return target, path_id(request)


def _card_path(target: str, target_id: int) -> str:
    return f"/{PLURALS[target]}/{target_id}"


async def _render_box(request: web.Request, target: str, target_id: int, *,
                      template: str = "_timeline_box_inner.html", tl: Any = None,
                      headers: dict[str, str] | None = None) -> web.Response:
    tl = tl if isinstance(tl, str) else None
    context = {**i18n.context(request), **await timeline_fragment(request, target, target_id, tl=tl),
               "csrf_token": request[SESSION].csrf_token}
    response = aiohttp_jinja2.render_template(template, request, context)
    response.headers.update(headers or {})
    return response


async def box(request: web.Request) -> web.Response:
    """The timeline box's content (chips, pinned, entries); with ``cursor``, only the next entries."""
    target, target_id = _target(request)
    template = "_timeline_items.html" if request.query.get("cursor") else "_timeline_box_inner.html"
    return await _render_box(request, target, target_id, template=template)


async def add_note(request: web.Request) -> web.StreamResponse:
    """A note, with a file when one is chosen, in one unit of work. htmx gets the fresh box (or
    the form with the error next to the field); a plain form goes back to the card."""
    user = require_user(request)
    target, target_id = _target(request)
    form = await request.post()
    text = form.get("text")
    part: Any = form.get("file")
    has_file = part is not None and not isinstance(part, str) and bool(getattr(part, "filename", ""))
    server = request.app[CONFIG].server
    try:
        async with request.app[DB].transaction() as s:
            note = await timeline.add_note(s, user, target, target_id,
                                           {"text": text if isinstance(text, str) else None})
            if has_file:
                await attachments.attach_to_entry(
                    s, user, note["id"], filename=upload_name(part.filename), content_type=part.content_type,
                    data=part.file.read(), directory=server.attachments_dir, max_bytes=server.max_body_bytes)
    except ValidationError as exc:
        if not is_htmx(request):
            raise
        errors = reasons(exc)
        context = {**i18n.context(request), "timeline": {"base": f"/timeline/{PLURALS[target]}/{target_id}",
                                                         "target": target, "target_id": target_id},
                   "csrf_token": request[SESSION].csrf_token, "note_errors": errors,
                   "note_text": text if isinstance(text, str) else ""}
        response = aiohttp_jinja2.render_template("_timeline_note_form.html", request, context)
        response.headers.update({"HX-Retarget": f"#note-form-{target}-{target_id}", "HX-Reswap": "outerHTML"})
        return response
    if not is_htmx(request):
        raise web.HTTPSeeOther(_card_path(target, target_id))
    return await _render_box(request, target, target_id, tl=form.get("tl"),
                             headers={"HX-Trigger": "note-added"})


async def pin(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    target, target_id = _target(request)
    entry_id = path_id(request, "entry")
    form = await request.post()
    pinned = form.get("pinned") == "1"
    async with request.app[DB].transaction() as s:
        await timeline.set_pinned(s, user, entry_id, pinned)
    if not is_htmx(request):
        raise web.HTTPSeeOther(_card_path(target, target_id))
    return await _render_box(request, target, target_id, tl=form.get("tl"))


def register_views(router: web.UrlDispatcher) -> None:
    router.add_get(r"/timeline/{target:deals|clients|leads}/{id:\d+}", box)
    router.add_post(r"/timeline/{target:deals|clients|leads}/{id:\d+}/notes", add_note)
    router.add_post(r"/timeline/{target:deals|clients|leads}/{id:\d+}/entries/{entry:\d+}/pin", pin)

