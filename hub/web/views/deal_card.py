"""The deal card ``/deals/{id}``: main info edited in place, the stage bar with the move dialog, the
composer (Telegram, SMS and e-mail through the outbox) and the timeline (``timeline_part``).

Edit in place: ``GET /deals/{id}/fields/{field}?edit=1`` answers the field's small form, ``POST`` to
the same path changes the deal through ``deals.update_deal`` and answers the field re-rendered (or
the form with the error next to it). Without JavaScript the same forms work as plain pages
(``/deals/{id}?edit=amount``, ``/deals/{id}?move=<stage id>``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from hub.crm import deal_card, deals
from hub.crm.errors import ValidationError
from hub.crm.validate import small_int
from hub.web import i18n
from hub.web.errors import path_id
from hub.web.i18n import N_
from hub.web.keys import DB, SESSION
from hub.web.views import history_part, timeline_part
from hub.web.views.common import is_htmx, render, require_user, zone

FIELDS = {
    "title": N_("Title"),
    "amount": N_("Amount"),
    "responsible": N_("Responsible"),
    "contact": N_("Contact person"),
    "tags": N_("Tags"),
    "source": N_("Source"),
    "utm_source": N_("UTM source"),
    "next": N_("Next interaction"),
}
# Which error keys of the core belong to which field of the card.
ERROR_KEYS = {
    "title": ("title",), "amount": ("amount",), "responsible": ("responsible_id",),
    "contact": ("contact_id", "client_id"), "tags": ("tags",), "source": ("source",),
    "utm_source": ("utm_source",), "next": ("next_interaction_at", "next_interaction_note"),
}
SPACES = str.maketrans("", "", " \u00a0\u202f")


def _field_name(request: web.Request) -> str:
    name = request.match_info["field"]
    if name in FIELDS or (name.startswith("custom.") and 7 < len(name) <= 71):
        return name
    raise web.HTTPNotFound()


def _local_to_iso(value: str, request: web.Request) -> str | None:
    """A ``datetime-local`` value (the server's time zone) as ISO UTC; '' is None; junk stays
    as it is for the core to refuse."""
    value = value.strip()
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=zone(request)).isoformat()
    except ValueError:
        return value


def local_input(value: str | None, request: web.Request) -> str:
    """An ISO time as a ``datetime-local`` input's value in the server's time zone."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.astimezone(zone(request)).strftime("%Y-%m-%dT%H:%M")


def _custom_value(raw: str, kind: str) -> Any:
    raw = raw.strip()
    if raw == "":
        return None
    if kind == "number":
        try:
            number = float(raw.translate(SPACES).replace(",", "."))
        except ValueError:
            return raw
        return int(number) if number.is_integer() else number
    return raw


def _form_data(name: str, form: Any, request: web.Request,
               custom_fields: list[dict[str, Any]]) -> dict[str, Any]:
    """The PATCH body for one field of the card's form."""
    def text(key: str) -> str:
        value = form.get(key, "")
        return value if isinstance(value, str) else ""

    def optional_id(key: str) -> int | str | None:
        value = text(key).strip()
        number = small_int(value)
        return number if number is not None else (value or None)

    if name == "amount":
        return {"amount": text("amount").translate(SPACES) or "0"}
    if name == "responsible":
        return {"responsible_id": optional_id("responsible_id")}
    if name == "contact":
        return {"contact_id": optional_id("contact_id")}
    if name == "tags":
        return {"tags": [t.strip() for t in text("tags").split(",") if t.strip()]}
    if name == "next":
        return {"next_interaction_at": _local_to_iso(text("next_interaction_at"), request),
                "next_interaction_note": text("next_interaction_note")}
    if name.startswith("custom."):
        key = name[7:]
        kind = next((f["type"] for f in custom_fields if f["key"] == key), "text")
        return {"custom": {key: _custom_value(text("value"), kind)}}
    return {name: text(name)}


def _errors_for(name: str, exc: ValidationError) -> dict[str, Any]:
    keys = ERROR_KEYS.get(name, ("custom." + name[7:],) if name.startswith("custom.") else ())
    found = [timeline_part.reason(value) for key, value in exc.fields.items() if key in keys]
    if not found:  # a reason about the whole deal still shows next to the field
        found = [timeline_part.reason(value) for value in exc.fields.values()] or \
            [timeline_part.reason(exc.message)]
    return found[0]


async def _card(request: web.Request, deal_id: int) -> dict[str, Any]:
    user = require_user(request)
    async with request.app[DB].reading() as s:
        return await deal_card.deal_card(s, user, deal_id)


async def _choices(request: web.Request, name: str, card: dict[str, Any]) -> list[dict[str, Any]]:
    async with request.app[DB].reading() as s:
        if name == "responsible":
            return await deal_card.responsible_choices(s)
        if name == "contact":
            return await deal_card.contact_choices(s, card["deal"]["client_id"])
    return []


def _field_context(request: web.Request, card: dict[str, Any], name: str, *, editing: bool,
                   error: dict[str, Any] | None = None, choices: list[dict[str, Any]] | None = None,
                   values: dict[str, Any] | None = None) -> dict[str, Any]:
    custom = next((f for f in card["custom_fields"] if "custom." + f["key"] == name), None)
    return {
        "card": card, "deal": card["deal"], "field": name, "custom": custom,
        "label": custom["label"] if custom else FIELDS.get(name, name), "editing": editing,
        "error": error, "choices": choices or [], "values": values,
        "next_local": local_input(card["deal"]["next_interaction_at"], request),
    }


async def card_page(request: web.Request) -> web.Response:
    deal_id = path_id(request)
    card = await _card(request, deal_id)
    editing = moving = None
    edit = request.query.get("edit")
    if card["can_edit"] and edit and (edit in FIELDS or edit.startswith("custom.")):
        choices = await _choices(request, edit, card)
        editing = _field_context(request, card, edit, editing=True, choices=choices)
    move = request.query.get("move")
    if card["can_edit"] and move and small_int(move) is not None:
        stage = next((st for st in card["pipeline"]["stages"] if st["id"] == int(move)), None)
        if stage is not None:
            moving = {"stage": stage, "forward": _forward(card, stage["id"]), "errors": {}, "values": {}}
    return await render(request, "deal_card.html", {
        **_page(request, card, editing, moving),
        **await timeline_part.timeline_fragment(request, "deal", deal_id)})


async def field(request: web.Request) -> web.Response:
    """One field of the main info: shown, or (``?edit=1``) its small form."""
    deal_id = path_id(request)
    name = _field_name(request)
    card = await _card(request, deal_id)
    editing = request.query.get("edit") == "1" and card["can_edit"]
    choices = await _choices(request, name, card) if editing else []
    return _fragment(request, _field_context(request, card, name, editing=editing, choices=choices))


def _fragment(request: web.Request, context: dict[str, Any]) -> web.Response:
    return aiohttp_jinja2.render_template("deal_card_field.html", request, {
        **i18n.context(request), "f": context, "csrf_token": request[SESSION].csrf_token})


def _page(request: web.Request, card: dict[str, Any], editing: dict[str, Any] | None,
          move: dict[str, Any] | None) -> dict[str, Any]:
    """The card page's context besides the timeline."""
    def field_context(name: str) -> dict[str, Any]:
        if editing is not None and editing["field"] == name:
            return editing
        return _field_context(request, card, name, editing=False)

    more = ["contact", "next", "tags", "source", "utm_source",
            *("custom." + f["key"] for f in card["custom_fields"])]
    return {**card, "editing": editing, "move": move, "field_context": field_context, "more_fields": more}


async def save_field(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    deal_id = path_id(request)
    name = _field_name(request)
    card = await _card(request, deal_id)
    form = await request.post()
    data = _form_data(name, form, request, card["custom_fields"])
    try:
        async with request.app[DB].transaction() as s:
            card["deal"] = await deals.update_deal(s, user, deal_id, data)
    except ValidationError as exc:
        values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
        context = _field_context(request, card, name, editing=True, error=_errors_for(name, exc),
                                 choices=await _choices(request, name, card), values=values)
        if is_htmx(request):
            return _fragment(request, context)
        page = {**_page(request, card, context, None),
                **await timeline_part.timeline_fragment(request, "deal", deal_id)}
        return await render(request, "deal_card.html", page, status=422)
    if not is_htmx(request):
        raise web.HTTPSeeOther(f"/deals/{deal_id}")
    return _fragment(request, _field_context(request, card, name, editing=False))


async def move(request: web.Request) -> web.StreamResponse:
    """Move the deal (the dialog of the stage bar): result of the last interaction, the next one,
    the loss reason for a lost stage. htmx re-renders the card's main part and the timeline."""
    user = require_user(request)
    deal_id = path_id(request)
    form = await request.post()

    def text(key: str) -> str:
        value = form.get(key, "")
        return value.strip() if isinstance(value, str) else ""

    stage = text("stage_id")
    reason: Any = text("loss_reason_text") or small_int(text("loss_reason"))
    stage_id = small_int(stage)
    data = {"stage_id": stage_id if stage_id is not None else stage or None, "result": text("result"),
            "next_interaction_at": _local_to_iso(text("next_interaction_at"), request),
            "next_interaction_note": text("next_interaction_note"), "loss_reason": reason}
    try:
        if stage_id is not None and not data["result"] and _forward(await _card(request, deal_id), stage_id):
            raise ValidationError({"result": "is required"})  # the dialog asks what moved the deal on
        async with request.app[DB].transaction() as s:
            await deals.move_deal(s, user, deal_id, data)
    except ValidationError as exc:
        card = await _card(request, deal_id)
        chosen = next((st for st in card["pipeline"]["stages"] if str(st["id"]) == stage), None)
        if chosen is None:
            raise
        errors = {key: timeline_part.reason(value) for key, value in exc.fields.items()}
        moving = {"stage": chosen, "forward": _forward(card, chosen["id"]), "errors": errors,
                  "values": {k: v for k, v in form.items() if isinstance(v, str)}}
        page = {**_page(request, card, None, moving),
                **await timeline_part.timeline_fragment(request, "deal", deal_id)}
        return await render(request, "deal_card.html", page, status=200 if is_htmx(request) else 422)
    if not is_htmx(request):
        raise web.HTTPSeeOther(f"/deals/{deal_id}")
    response = await card_page(request)
    response.headers["HX-Trigger"] = "timeline-refresh"
    return response


def _forward(card: dict[str, Any], stage_id: int) -> bool:
    """Whether ``stage_id`` comes after the deal's stage in its pipeline (won and lost come last):
    a move forward is asked for the result of the last interaction."""
    order = [st["id"] for st in card["pipeline"]["stages"]]
    current = card["deal"]["stage_id"]
    return stage_id in order and current in order and order.index(stage_id) > order.index(current)


def register_views(router: web.UrlDispatcher) -> None:
    router.add_get(r"/deals/{id:\d+}", card_page)
    router.add_get(r"/deals/{id:\d+}/fields/{field}", field)
    router.add_post(r"/deals/{id:\d+}/fields/{field}", save_field)
    router.add_post(r"/deals/{id:\d+}/move", move)
    timeline_part.register_views(router)
    history_part.register_views(router)
