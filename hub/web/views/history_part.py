"""The history of changes on the cards (История изменений): ``/{deals,clients,leads,tasks}/{id}/history``
answers the newest changes — to htmx as the list alone (the deal's, lead's and task's «История
изменений» section loads it when opened; ``before_id`` gives the older ones), otherwise as a page of its
own. The client card shows the same list in its «История изменений» tab (``history_context``).

The core keeps field codes and values (``hub.crm.history``); here each field gets its name in the
reader's language and each value the form it shows in: money, a time, yes/no, a name from a fixed set.
"""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from hub.crm import deals, history, settings
from hub.web import i18n
from hub.web.errors import query_int
from hub.web.i18n import N_
from hub.web.keys import DB
from hub.web.views.clients import KIND_LABELS, RELATIONSHIP_LABELS, path_id
from hub.web.views.common import is_htmx, render, require_user

PAGE = 50
MAX_TEXT = 300
KINDS = {"deals": "deal", "clients": "client", "leads": "lead", "tasks": "task"}
CARDS = {"deal": "/deals/{}", "client": "/clients/{}", "lead": "/leads/{}", "task": "/tasks/{}"}

LABELS = {
    history.CREATED: N_("Record created"),
    "title": N_("Title"), "amount": N_("Amount"), "currency": N_("Currency"), "stage": N_("Stage"),
    "responsible": N_("Responsible"), "client": N_("Client"), "lead": N_("Lead"),
    "contact": N_("Contact person"), "tags": N_("Tags"), "source": N_("Source"),
    "utm_source": N_("UTM source"), "utm_medium": N_("UTM medium"), "utm_campaign": N_("UTM campaign"),
    "utm_content": N_("UTM content"), "utm_term": N_("UTM term"),
    "next_interaction_at": N_("Next interaction"),
    "next_interaction_note": N_("Next interaction: what to do"),
    "loss_reason": N_("Loss reason"),
    "name": N_("Name"), "kind": N_("Kind"), "relationship_type": N_("Relationship"),
    "full_name": N_("Full name"), "inn": N_("INN"), "kpp": N_("KPP"), "okpo": N_("OKPO"),
    "region": N_("Region"), "industry": N_("Industry"), "comment": N_("Comment"), "manager": N_("Manager"),
    "phones": N_("Phones"), "emails": N_("E-mails"), "telegram": N_("Telegram"), "position": N_("Position"),
    "unsorted": N_("Unsorted"), "rejected_reason": N_("Rejected"), "converted_client": N_("Made a client"),
    "subject": N_("Subject"), "description": N_("Description"), "start_at": N_("Start"), "due_at": N_("Due"),
    "percent": N_("Percent done"), "done": N_("Done"), "deal": N_("Deal"), "assignee": N_("Assignee"),
}
TIMES = ("next_interaction_at", "start_at", "due_at")
YES_NO = ("unsorted", "done")
TASK_KINDS = {"task": N_("Task"), "callback": N_("Call back")}
CHOICES = {("client", "kind"): KIND_LABELS, ("client", "relationship_type"): RELATIONSHIP_LABELS,
           ("task", "kind"): TASK_KINDS}


def _shown(entity: str, field: str, value: Any) -> dict[str, Any]:
    """How a value shows: ``{"as": "empty"|"text"|"money"|"time"|"yes_no"|"msg"|"source", "value"}``."""
    if value is None or value == "" or value == []:
        return {"as": "empty"}
    if field == "amount":
        return {"as": "money", "value": value}
    if field in TIMES:
        return {"as": "time", "value": value}
    if field in YES_NO or isinstance(value, bool):
        return {"as": "yes_no", "value": bool(value)}
    if field == "source":
        return {"as": "source", "value": value}
    choices = CHOICES.get((entity, field))
    if choices is not None and value in choices:
        return {"as": "msg", "value": choices[value]}
    if isinstance(value, dict):
        value = value.get("name") or f"#{value.get('id')}"
    elif isinstance(value, list):
        value = ", ".join(str(item) for item in value)
    text = str(value)
    return {"as": "text", "value": text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…",
            "full": text if len(text) > MAX_TEXT else ""}


def _row(entity: str, change: dict[str, Any], custom_labels: dict[str, str]) -> dict[str, Any]:
    field = change["field"]
    label: dict[str, Any] = {"msg": LABELS.get(field, "")}
    if field.startswith("custom."):
        label = {"text": custom_labels.get(field[7:], field[7:])}
    elif field.startswith("utm."):
        label = {"msg": N_("UTM tag «%(name)s»"), "name": field[4:]}
    elif not label["msg"]:
        label = {"text": field}
    return {"id": change["id"], "at": change["at"], "who": (change["user"] or {}).get("name", ""),
            "field": field, "label": label, "created": field == history.CREATED,
            "before": _shown(entity, field, change["before"]),
            "after": _shown(entity, field, change["after"])}


async def history_context(request: web.Request, entity: str, entity_id: int, *,
                          before_id: int | None = None) -> dict[str, Any]:
    """What ``_history.html`` shows: the newest changes (older than ``before_id``), the URL of the
    next ones, the deal's currency for its amounts."""
    user = require_user(request)
    async with request.app[DB].reading() as s:
        found = await history.list_changes(s, user, entity, entity_id, before_id=before_id, limit=PAGE + 1)
        fields = (await settings.list_custom_fields(s, user, entity=entity)).items \
            if entity in ("client", "deal") else []
        currency = (await deals.get_deal(s, user, entity_id))["currency"] if entity == "deal" else "RUB"
    labels = {f["key"]: f["label"] for f in fields}
    url = f"{CARDS[entity].format(entity_id)}/history"
    more = f"{url}?before_id={found[PAGE - 1]['id']}" if len(found) > PAGE else None
    return {"changes": [_row(entity, change, labels) for change in found[:PAGE]], "more_url": more,
            "currency": currency, "history_url": url, "card_url": CARDS[entity].format(entity_id),
            "older": before_id is not None}


async def history_view(request: web.Request) -> web.Response:
    entity = KINDS[request.match_info["kind"]]
    entity_id = path_id(request)
    context = await history_context(request, entity, entity_id, before_id=query_int(request, "before_id"))
    if is_htmx(request):
        return aiohttp_jinja2.render_template("_history.html", request, {**i18n.context(request), **context})
    return await render(request, "history_page.html", {**context, "entity": entity})


def register_views(router: web.UrlDispatcher) -> None:
    router.add_get(r"/{kind:deals|clients|leads|tasks}/{id:\d+}/history", history_view)
