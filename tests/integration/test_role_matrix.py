"""The role matrix (issue 13): every route of the OpenAPI document and every page, called with each role
(agent with agents_see_all off, manager, admin, nobody) on another agent's objects.

One world per database: agent2 owns a client with a contact, a lead, a deal, a task, a note with a file,
a call with a recording, a conversation, a message, a notification and an API token; the administrator
owns a custom field, a tag, a pipeline and a loss reason. A second, like world (agent2's too) is there for
the administrator's deletions. Every route must be classified in ``API`` (and every page in ``PAGES``):
a new route fails the test until it is added here. After the agent's and the manager's attempts the
world is read again as the administrator and must not have changed. ``PROBES`` and ``PAGE_PROBES`` point
the agent's own things at agent2's (filters, links, nested ids, self-promotion). Failures are collected
and reported all at once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient

from hub.config import Config
from hub.crm import notifications
from hub.web.keys import DB
from tests.integration.conftest import Api
from tests.integration.test_api_calls import WAV, end
from tests.integration.test_api_messages import sms_in
from tests.integration.test_auth import browser_login, session_csrf

MARK = "Секрет-Q7"  # in the name of every foreign object: it must never reach the agent
PUBLIC, OWN, FOREIGN, ADMIN, OWNER_OR_ADMIN, LOGOUT = "public", "own", "foreign", "admin", "owner", "logout"
VOLATILE = {"last_used_at"}
OWN_NAMES = {"Своя компания", "Свой лид", "Свой контакт", "Своя сделка", "Своя задача"}  # the agent's own


@pytest.fixture
def config(config: Config, tmp_path: Path) -> Config:
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    (recordings / "rec.wav").write_bytes(WAV)
    config.asterisk.recordings_dir = str(recordings)
    return config


Body = Any  # a JSON body, or a function of the role and the world giving one


@dataclass(frozen=True)
class Rule:
    kind: str                      # PUBLIC, OWN (any signed-in user), FOREIGN (the object's people and
    #                                staff), ADMIN (administrators only), OWNER_OR_ADMIN, LOGOUT
    ids: tuple[str, ...] = ()      # the world's keys for the path's parameters, in order
    body: Body = None
    params: dict[str, str] = field(default_factory=dict)
    multipart: bool = False
    stream: bool = False
    allow: frozenset[int] = frozenset()  # extra answers that are fine for everybody (a documented 503)


def R(kind: str, *ids: str, body: Body = None, **kw: Any) -> Rule:
    return Rule(kind, ids, body, **kw)


def _by_role(agent: Any, staff: Any) -> Callable[[str, dict[str, Any]], Any]:
    return lambda role, w: agent if role == "agent" else staff


V = "/api/v1"
API: dict[tuple[str, str], Rule] = {
    ("GET", "/healthz"): R(PUBLIC),
    ("GET", f"{V}/openapi.json"): R(PUBLIC),
    ("POST", f"{V}/auth/token"): R(PUBLIC, body={}),
    ("POST", "/webhooks/telegram"): R(PUBLIC, body={}),
    ("POST", "/webhooks/twilio/sms"): R(PUBLIC, body={}),
    ("POST", "/webhooks/twilio/status"): R(PUBLIC, body={}),
    ("DELETE", f"{V}/auth/token"): R(LOGOUT),
    ("GET", f"{V}/auth/tokens"): R(OWN),
    ("DELETE", f"{V}/auth/tokens/{{id}}"): R(OWNER_OR_ADMIN, "token"),
    ("GET", f"{V}/me"): R(OWN),
    ("GET", f"{V}/events"): R(OWN, stream=True),
    ("GET", f"{V}/identify"): R(OWN, params={"phone": "+79161119002"}),
    ("GET", f"{V}/presence"): R(OWN),
    # clients and their parts
    ("GET", f"{V}/clients"): R(OWN),
    ("POST", f"{V}/clients"): R(OWN, body={"name": "Своя компания"}),
    ("GET", f"{V}/clients/{{id}}"): R(FOREIGN, "client"),
    ("PATCH", f"{V}/clients/{{id}}"): R(FOREIGN, "client", body={"region": "Изменено"}),
    ("DELETE", f"{V}/clients/{{id}}"): R(FOREIGN, "client"),
    ("POST", f"{V}/clients/{{id}}/notes"): R(FOREIGN, "client", body={"text": "Чужая заметка"}),
    ("GET", f"{V}/clients/{{id}}/timeline"): R(FOREIGN, "client"),
    ("GET", f"{V}/contacts"): R(OWN),
    ("POST", f"{V}/contacts"): R(FOREIGN, body=lambda r, w: {"client_id": w["client"], "name": "Подсадной"}),
    ("GET", f"{V}/contacts/{{id}}"): R(FOREIGN, "contact"),
    ("PATCH", f"{V}/contacts/{{id}}"): R(FOREIGN, "contact", body={"position": "Изменено"}),
    ("DELETE", f"{V}/contacts/{{id}}"): R(FOREIGN, "contact"),
    # leads
    ("GET", f"{V}/leads"): R(OWN),
    # another's things are not found (a part of the mark: the page repeats the query in its box)
    ("GET", f"{V}/search"): R(OWN, params={"q": MARK.split("-")[0]}),
    # the lists as files: CSV, where another's name would show (an XLSX is compressed)
    ("GET", f"{V}/clients/export"): R(OWN, params={"format": "csv"}),
    ("GET", f"{V}/leads/export"): R(OWN, params={"format": "csv"}),
    ("GET", f"{V}/deals/export"): R(OWN, params={"format": "csv"}),
    ("GET", f"{V}/tasks/export"): R(OWN, params={"format": "csv"}),
    ("GET", f"{V}/calls/export"): R(OWN, params={"format": "csv"}),
    ("POST", f"{V}/leads"): R(OWN, body={"name": "Свой лид"}),
    ("GET", f"{V}/leads/{{id}}"): R(FOREIGN, "lead"),
    ("PATCH", f"{V}/leads/{{id}}"): R(FOREIGN, "lead", body={"comment": "Изменено"}),
    ("DELETE", f"{V}/leads/{{id}}"): R(FOREIGN, "lead"),
    ("POST", f"{V}/leads/{{id}}/convert"): R(FOREIGN, "lead", body={}),
    ("POST", f"{V}/leads/{{id}}/reject"): R(FOREIGN, "lead", body={"reason": "Спам"}),
    ("POST", f"{V}/leads/{{id}}/notes"): R(FOREIGN, "lead", body={"text": "Чужая заметка"}),
    ("GET", f"{V}/leads/{{id}}/timeline"): R(FOREIGN, "lead"),
    # deals
    ("GET", f"{V}/deals"): R(OWN),
    ("POST", f"{V}/deals"): R(FOREIGN, body=lambda r, w: {"title": "Подсадная", "client_id": w["client"]}),
    # mass actions answer 200 and skip what the caller may not change: the snapshot shows nothing changed
    ("POST", f"{V}/deals/bulk"): R(OWN, body=lambda r, w: {"ids": [w["deal"]], "action": "tag",
                                                            "value": "Взлом"}),
    ("POST", f"{V}/clients/bulk"): R(OWN, body=lambda r, w: {"ids": [w["client"]], "action": "tag",
                                                              "value": "Взлом"}),
    ("GET", f"{V}/deals/{{id}}"): R(FOREIGN, "deal"),
    ("PATCH", f"{V}/deals/{{id}}"): R(FOREIGN, "deal", body={"next_interaction_note": "Изменено"}),
    ("DELETE", f"{V}/deals/{{id}}"): R(FOREIGN, "deal"),
    ("POST", f"{V}/deals/{{id}}/move"): R(FOREIGN, "deal", body=lambda r, w: {"stage_id": w["stage2"]}),
    ("POST", f"{V}/deals/{{id}}/notes"): R(FOREIGN, "deal", body={"text": "Чужая заметка"}),
    ("GET", f"{V}/deals/{{id}}/timeline"): R(FOREIGN, "deal"),
    # tasks
    ("GET", f"{V}/tasks"): R(OWN),
    ("POST", f"{V}/tasks"): R(FOREIGN, body=lambda r, w: {"subject": "Подсадная", "deal_id": w["deal"]}),
    ("GET", f"{V}/tasks/{{id}}"): R(FOREIGN, "task"),
    ("PATCH", f"{V}/tasks/{{id}}"): R(FOREIGN, "task", body={"description": "Изменено"}),
    ("DELETE", f"{V}/tasks/{{id}}"): R(FOREIGN, "task"),
    ("POST", f"{V}/tasks/{{id}}/complete"): R(FOREIGN, "task"),
    # the history of changes
    ("GET", f"{V}/clients/{{id}}/history"): R(FOREIGN, "client"),
    ("GET", f"{V}/contacts/{{id}}/history"): R(FOREIGN, "contact"),
    ("GET", f"{V}/leads/{{id}}/history"): R(FOREIGN, "lead"),
    ("GET", f"{V}/deals/{{id}}/history"): R(FOREIGN, "deal"),
    ("GET", f"{V}/tasks/{{id}}/history"): R(FOREIGN, "task"),
    # timeline entries and files
    ("PATCH", f"{V}/timeline/{{id}}"): R(FOREIGN, "entry", body={"pinned": True}),
    ("POST", f"{V}/timeline/{{id}}/attachments"): R(FOREIGN, "entry", multipart=True),
    ("POST", f"{V}/timeline/{{id}}/move"): R(FOREIGN, "entry", body=lambda r, w: {"deal_id": w["deal"]}),
    ("GET", f"{V}/attachments/{{id}}"): R(FOREIGN, "attachment"),
    # calls
    ("GET", f"{V}/calls"): R(OWN),
    ("POST", f"{V}/calls/originate"): R(OWN, body={"number": "+79161119001"}, allow=frozenset({503})),
    ("GET", f"{V}/calls/{{id}}"): R(FOREIGN, "call"),
    ("POST", f"{V}/calls/{{id}}/lead"): R(FOREIGN, "call", body={}),
    ("GET", f"{V}/calls/{{id}}/recording"): R(FOREIGN, "call"),
    ("GET", f"{V}/calls/{{id}}/recordings/{{n}}"): R(FOREIGN, "call", "one"),
    # messages
    ("GET", f"{V}/conversations"): R(OWN),
    ("GET", f"{V}/conversations/{{id}}"): R(FOREIGN, "conversation"),
    ("PATCH", f"{V}/conversations/{{id}}"): R(
        FOREIGN, "conversation", body=lambda r, w: {"assignee_id": w["me" if r == "agent" else "owner"]}),
    ("POST", f"{V}/conversations/{{id}}/lead"): R(FOREIGN, "conversation"),
    ("POST", f"{V}/conversations/{{id}}/read"): R(FOREIGN, "conversation"),
    ("POST", f"{V}/messages"): R(FOREIGN, body=lambda r, w: {"channel": "sms", "deal_id": w["deal"],
                                                              "text": "x"}),
    ("POST", f"{V}/messages/{{id}}/retry"): R(FOREIGN, "message"),
    # the caller's bell
    ("GET", f"{V}/notifications"): R(OWN),
    ("DELETE", f"{V}/notifications"): R(OWN),
    ("POST", f"{V}/notifications/read"): R(OWN, body=lambda r, w: {"ids": [w["notification"]]}),
    # administration: everybody reads, administrators change
    ("GET", f"{V}/users"): R(OWN),
    ("POST", f"{V}/users"): R(ADMIN, body=lambda r, w: {"login": f"new-{r}", "password": "Long-enough-9",
                                                         "name": "Новый", "role": "admin"}),
    ("GET", f"{V}/users/{{id}}"): R(OWN, "owner"),
    ("PATCH", f"{V}/users/{{id}}"): R(ADMIN, "owner", body=_by_role({"role": "admin"}, {"language": "ru"})),
    ("DELETE", f"{V}/users/{{id}}"): R(ADMIN, "owner"),
    ("GET", f"{V}/custom-fields"): R(OWN),
    ("POST", f"{V}/custom-fields"): R(ADMIN, body=lambda r, w: {"entity": "client", "key": f"k_{r}",
                                                                "label": "Поле", "type": "text"}),
    ("GET", f"{V}/custom-fields/{{id}}"): R(OWN, "field"),
    ("PATCH", f"{V}/custom-fields/{{id}}"): R(ADMIN, "field", body={"label": "Изменено"}),
    ("DELETE", f"{V}/custom-fields/{{id}}"): R(ADMIN, "field"),
    ("GET", f"{V}/tags"): R(OWN),
    ("GET", f"{V}/tags/{{id}}"): R(OWN, "tag"),
    ("PATCH", f"{V}/tags/{{id}}"): R(ADMIN, "tag", body=lambda r, w: {"name": f"тег-{r}-{w['me']}"}),
    ("DELETE", f"{V}/tags/{{id}}"): R(ADMIN, "tag"),
    ("GET", f"{V}/pipelines"): R(OWN),
    ("POST", f"{V}/pipelines"): R(ADMIN, body={"name": "Новая", "stages": [{"name": "Этап"}]}),
    ("GET", f"{V}/pipelines/{{id}}"): R(OWN, "pipeline"),
    ("PATCH", f"{V}/pipelines/{{id}}"): R(ADMIN, "pipeline", body=lambda r, w: {"name": f"Воронка {r}"}),
    ("DELETE", f"{V}/pipelines/{{id}}"): R(ADMIN, "pipeline"),
    ("GET", f"{V}/loss-reasons"): R(OWN),
    ("POST", f"{V}/loss-reasons"): R(ADMIN, body=lambda r, w: {"name": f"Причина {r}"}),
    ("PATCH", f"{V}/loss-reasons/{{id}}"): R(ADMIN, "reason", body={"active": False}),
    ("GET", f"{V}/settings/access"): R(OWN),
    ("GET", f"{V}/audit"): R(ADMIN),
    ("PATCH", f"{V}/settings/access"): R(ADMIN, body=_by_role({"agents_see_all": True},
                                                             {"route_to_free_agent": False})),
    # duplicates and merging: staff only (a merge into no client: 422 for staff, 403 for the agent)
    ("GET", f"{V}/duplicates"): R(FOREIGN),
    ("POST", f"{V}/clients/{{id}}/merge"): R(FOREIGN, "client", body={"other_id": 999999}),
    ("POST", f"{V}/leads/{{id}}/merge"): R(FOREIGN, "lead", body={"client_id": 999999}),
    ("POST", f"{V}/merges/{{id}}/undo"): R(FOREIGN, "merge"),
}

# GET pages: the world's keys for their parameters (FOREIGN: the agent may not open them), OWN lists
# (the agent opens them, with nothing of agent2's in them) and ADMIN pages.
PAGES: dict[str, tuple[str, tuple[str, ...], dict[str, str]]] = {
    "/": (OWN, (), {}), "/bell": (OWN, (), {}), "/calls": (OWN, (), {}), "/clients": (OWN, (), {}),
    "/deals": (OWN, (), {}), "/deals/list": (OWN, (), {}), "/deals/new/owners": (OWN, (), {}),
    "/deals/new": (OWN, (), {}), "/search": (OWN, (), {}), "/search/suggest": (OWN, (), {}),
    "/deals/board/unsorted": (OWN, (), {}), "/inbox": (OWN, (), {}), "/inbox/list": (OWN, (), {}),
    "/inbox/channels": (OWN, (), {}), "/leads": (OWN, (), {}), "/presence": (OWN, (), {}),
    "/reports": (OWN, (), {}), "/reports/funnel": (OWN, (), {}), "/reports/widgets": (OWN, (), {}),
    "/tasks": (OWN, (), {}), "/tasks/new": (OWN, (), {}),
    "/tasks/options": (OWN, (), {"what": "'deal", "deal_id": "deal"}),
    "/deals/board/totals": (OWN, (), {"pipeline": "pipeline_default"}),
    "/login": (OWN, (), {}),
    "/deals/board/column/{id}": (OWN, ("stage1",), {}),
    "/clients/{id}": (FOREIGN, ("client",), {}), "/deals/{id}": (FOREIGN, ("deal",), {}),
    "/deals/{id}/fields/{field}": (FOREIGN, ("deal", "title"), {}),
    "/deals/board/card/{id}": (FOREIGN, ("deal",), {"pipeline": "pipeline_default"}),
    "/inbox/c/{id}": (FOREIGN, ("conversation",), {}), "/leads/{id}": (FOREIGN, ("lead",), {}),
    "/tasks/{id}": (FOREIGN, ("task",), {}),
    "/timeline/{target}/{id}": (FOREIGN, ("deals", "deal"), {}),  # and clients, leads: see below
    "/{kind}/{id}/history": (FOREIGN, ("deals", "deal"), {}),  # and clients, leads, tasks: see below
    "/settings": (ADMIN, (), {}), "/settings/access": (ADMIN, (), {}), "/settings/fields": (ADMIN, (), {}),
    "/settings/loss-reasons": (ADMIN, (), {}), "/settings/pipelines": (ADMIN, (), {}),
    "/settings/tags": (ADMIN, (), {}), "/settings/users": (ADMIN, (), {}),
    "/settings/users/new": (ADMIN, (), {}), "/settings/audit": (ADMIN, (), {}),
    "/settings/users/{id}": (ADMIN, ("owner",), {}), "/settings/pipelines/{id}": (ADMIN, ("pipeline",), {}),
    "/settings/fields/{id}": (ADMIN, ("field",), {}),
    "/duplicates": (FOREIGN, (), {}), "/clients/{id}/merge": (FOREIGN, ("client",), {"other": "client"}),
}
EXTRA_PAGES: list[tuple[str, str, tuple[str, ...], dict[str, str]]] = [
    ("/timeline/{target}/{id}", FOREIGN, ("clients", "client"), {}),
    ("/timeline/{target}/{id}", FOREIGN, ("leads", "lead"), {}),
    ("/{kind}/{id}/history", FOREIGN, ("clients", "client"), {}),
    ("/{kind}/{id}/history", FOREIGN, ("leads", "lead"), {}),
    ("/{kind}/{id}/history", FOREIGN, ("tasks", "task"), {}),
    ("/tasks/options", OWN, (), {"what": "'client", "client_id": "client"}),
    ("/deals/new", OWN, (), {"client": "client"}), ("/deals/new", OWN, (), {"lead": "lead"}),
    ("/search", OWN, (), {"q": "'" + MARK.split("-")[0]}),
    ("/search/suggest", OWN, (), {"q": "'" + MARK.split("-")[0]}),
    ("/tasks/new", OWN, (), {"deal_id": "deal", "client_id": "client", "lead_id": "lead"}),
]

# Form posts of pages with parameters, tried by the agent on agent2's (or the administrator's) things:
# each must answer 403 or 404 and change nothing.
PAGE_POSTS: dict[str, tuple[str, ...]] = {
    "/bell/{id}/open": ("notification",),
    "/clients/{id}": ("client",), "/clients/{id}/contacts": ("client",),
    "/clients/{id}/contacts/{contact_id}": ("client", "contact"),
    "/clients/{id}/contacts/{contact_id}/delete": ("client", "contact"),
    "/clients/{id}/deals": ("client",),
    "/deals/{id}/fields/{field}": ("deal", "title"), "/deals/{id}/move": ("deal",),
    "/inbox/c/{id}/assign": ("conversation",),
    "/leads/{id}/take": ("lead",), "/leads/{id}/convert": ("lead",), "/leads/{id}/reject": ("lead",),
    "/settings/users/{id}": ("owner",), "/settings/users/{id}/password": ("owner",),
    "/settings/users/{id}/tokens/{token_id}/end": ("owner", "token"),
    "/settings/pipelines/{id}": ("pipeline",), "/settings/pipelines/{id}/delete": ("pipeline",),
    "/settings/loss-reasons/{id}": ("reason",),
    "/settings/fields/{id}": ("field",), "/settings/fields/{id}/delete": ("field",),
    "/settings/tags/{id}": ("tag",), "/settings/tags/{id}/delete": ("tag",),
    "/tasks/{id}": ("task",), "/tasks/{id}/complete": ("task",), "/tasks/{id}/delete": ("task",),
    "/tasks/{id}/attachments/{attachment}/delete": ("task", "attachment"),
    "/timeline/{target}/{id}/notes": ("deals", "deal"),
    "/timeline/{target}/{id}/entries/{entry}/pin": ("deals", "deal", "entry"),
    "/clients/{id}/merge": ("client",), "/leads/{id}/merge": ("lead",), "/merges/{id}/undo": ("merge",),
}


# The agent's own things pointed at agent2's: lists filtered by them, and writes that would tie them
# together (each must be refused: 403, 404 or 422). ``o`` is the agent's own world, ``w`` agent2's.
Probe = tuple[str, str, Callable[[dict[str, Any], dict[str, Any]], Any]]
PROBES: list[Probe] = [
    ("GET", "/clients?manager={owner}", lambda o, w: None),
    ("GET", "/contacts?client={client}", lambda o, w: None),
    ("GET", "/deals?client={client}", lambda o, w: None),
    ("GET", "/deals?lead={lead}", lambda o, w: None),
    ("GET", "/deals?responsible={owner}", lambda o, w: None),
    ("GET", "/leads?manager={owner}", lambda o, w: None),
    ("GET", "/tasks?deal={deal}", lambda o, w: None),
    ("GET", "/tasks?client={client}", lambda o, w: None),
    ("GET", "/tasks?lead={lead}", lambda o, w: None),
    ("GET", "/tasks?assignee={owner}", lambda o, w: None),
    ("GET", "/calls?agent={owner}", lambda o, w: None),
    ("GET", "/conversations?assignee={owner}", lambda o, w: None),
    ("GET", "/auth/tokens?user_id={owner}", lambda o, w: None),
    ("GET", "/identify?email=rm2%40example.com", lambda o, w: None),
    ("PATCH", "/deals/{own_deal}", lambda o, w: {"client_id": w["client"]}),
    ("PATCH", "/deals/{own_deal}", lambda o, w: {"contact_id": w["contact"]}),
    ("PATCH", "/deals/{own_deal}", lambda o, w: {"lead_id": w["lead"]}),
    ("PATCH", "/tasks/{own_task}", lambda o, w: {"deal_id": w["deal"]}),
    ("PATCH", "/tasks/{own_task}", lambda o, w: {"client_id": w["client"]}),
    ("PATCH", "/tasks/{own_task}", lambda o, w: {"lead_id": w["lead"]}),
    ("PATCH", "/contacts/{own_contact}", lambda o, w: {"client_id": w["client"]}),
    ("POST", "/tasks", lambda o, w: {"subject": "Своя задача", "client_id": w["client"]}),
    ("POST", "/tasks", lambda o, w: {"subject": "Своя задача", "lead_id": w["lead"]}),
    ("POST", "/deals", lambda o, w: {"title": "Своя сделка", "client_id": o["own_client"],
                                     "contact_id": w["contact"]}),
    ("POST", "/deals", lambda o, w: {"title": "Своя сделка", "lead_id": w["lead"]}),
    ("POST", "/messages", lambda o, w: {"channel": "sms", "client_id": w["client"], "text": "x"}),
    ("POST", "/messages", lambda o, w: {"channel": "sms", "lead_id": w["lead"], "text": "x"}),
    ("POST", "/messages", lambda o, w: {"channel": "sms", "deal_id": o["own_deal"], "text": "x",
                                        "reply_to": w["entry"]}),
    ("POST", "/timeline/{own_entry}/move", lambda o, w: {"deal_id": w["deal"]}),
    ("PATCH", "/users/{me}", lambda o, w: {"role": "admin"}),
    ("PATCH", "/users/{me}", lambda o, w: {"extensions": ["102"]}),  # agent2's phone: their calls
]


# The same through the pages' forms: must not succeed (a redirect) nor show agent2's things.
PAGE_PROBES: list[tuple[str, Callable[[dict[str, Any], dict[str, Any]], dict[str, str]]]] = [
    ("/tasks", lambda o, w: {"subject": "Своя задача", "deal_id": str(w["deal"])}),
    ("/tasks", lambda o, w: {"subject": "Своя задача", "client_id": str(w["client"])}),
    ("/tasks/{own_task}", lambda o, w: {"subject": "Своя задача", "deal_id": str(w["deal"])}),
    ("/deals/{own_deal}/fields/contact", lambda o, w: {"contact_id": str(w["contact"])}),
    ("/clients/{own_client}/contacts/{contact}", lambda o, w: {"name": "Взлом", "position": "Взлом"}),
    ("/clients/{own_client}/contacts/{contact}/delete", lambda o, w: {}),
    ("/tasks/{own_task}/attachments/{attachment}/delete", lambda o, w: {}),
    ("/timeline/deals/{own_deal}/entries/{entry}/pin", lambda o, w: {"pinned": "1"}),
]


async def probe(walk: Walk, agent: Api) -> dict[str, Any]:
    """The agent's own client, contact, deal, task and note, then every probe against agent2's."""
    own_client = await agent.post(f"{V}/clients", {"name": "Своя компания", "phones": ["+79161119005"],
                                                   "manager_id": agent.id}, expect=201)
    own = {"own_client": own_client["id"]}
    own["own_contact"] = (await agent.post(f"{V}/contacts", {"client_id": own_client["id"],
                                                             "name": "Свой контакт"}, expect=201))["id"]
    own["own_deal"] = (await agent.post(f"{V}/deals", {"title": "Своя сделка", "client_id": own_client["id"]},
                                        expect=201))["id"]
    own["own_task"] = (await agent.post(f"{V}/tasks", {"subject": "Своя задача", "assignee_id": agent.id},
                                        expect=201))["id"]
    own["own_entry"] = (await agent.post(f"{V}/deals/{own['own_deal']}/notes", {"text": "Своя заметка"},
                                         expect=201))["id"]
    for method, path, body in PROBES:
        url = V + path.format(**own, **walk.world)
        status, text = await hit(walk.client, method, url, agent.token, body(own, walk.world))
        walk.calls += 1
        others = f'"user_id": {walk.world["owner"]}' in text  # agent2's tokens carry no MARK
        if status >= 500 or MARK in text or (method != "GET" and status < 300) or others:
            walk.failures.append(f"probe {method} {url} as agent: {status}: {text[:200]}")
    return own


def _fill(path: str, keys: tuple[str, ...], world: dict[str, Any]) -> str:
    names = re.findall(r"{(\w+)}", path)
    assert len(names) == len(keys), (path, keys)
    for name, key in zip(names, keys, strict=True):
        path = path.replace(f"{{{name}}}", str(world.get(key, key)), 1)
    return path


def _routes(app: web.Application, api: bool) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path") or info.get("prefix")
        if route.method == "HEAD" or path is None or path.startswith("/static"):
            continue
        path = re.sub(r"{(\w+):[^}]+}", r"{\1}", path)
        if path.startswith(("/api/", "/webhooks/")) or path == "/healthz":
            if api:
                found.add((route.method, path))
        elif not api:
            found.add((route.method, path))
    return found


async def hit(client: TestClient, method: str, path: str, token: str | None, body: Any = None,
              params: dict[str, str] | None = None, multipart: bool = False,
              stream: bool = False) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    kwargs: dict[str, Any] = {"headers": headers, "params": params, "allow_redirects": False}
    if multipart:
        form = FormData()
        form.add_field("file", b"%PDF-1.4 injected", filename="x.pdf", content_type="application/pdf")
        kwargs["data"] = form
    elif body is not None:
        kwargs["data"] = json.dumps(body)
        headers["Content-Type"] = "application/json"
    async with client.request(method, path, **kwargs) as response:
        if stream and response.status == 200:
            return 200, ""
        return response.status, (await response.read()).decode(errors="replace")


async def build_world(app: web.Application, admin: Api, owner: Api, me: Api, n: int,
                      full: bool = True) -> dict[str, Any]:
    """agent2's things (MARK where a name shows) and the administrator's; without ``full`` only what
    the deletions need."""
    phone = f"+7916111900{n}"
    w: dict[str, Any] = {"owner": owner.id, "me": me.id, "one": 1, "title": "title"}
    client = await owner.post(f"{V}/clients", {"name": f"{MARK} ООО {n}", "phones": [phone],
                                               "emails": [f"rm{n}@example.com"],
                                               "manager_id": owner.id}, expect=201)
    w["client"] = client["id"]
    w["contact"] = (await owner.post(f"{V}/contacts", {"client_id": client["id"], "name": f"{MARK} Контакт"},
                                     expect=201))["id"]
    w["lead"] = (await owner.post(f"{V}/leads", {"name": f"{MARK} Лид", "manager_id": owner.id},
                                  expect=201))["id"]
    w["deal"] = (await owner.post(f"{V}/deals", {"title": f"{MARK} Сделка", "client_id": client["id"],
                                                 "tags": [f"тег-{n}"]}, expect=201))["id"]
    w["task"] = (await owner.post(f"{V}/tasks", {"subject": f"{MARK} Задача", "assignee_id": owner.id,
                                                 "deal_id": w["deal"]}, expect=201))["id"]
    w["token"] = next(t["id"] for t in (await owner.get(f"{V}/auth/tokens"))["items"] if t["current"])
    custom = {"entity": "client", "key": f"rm{n}", "label": f"Поле {n}", "type": "text"}
    w["field"] = (await admin.post(f"{V}/custom-fields", custom, expect=201))["id"]
    w["tag"] = next(t["id"] for t in (await admin.get(f"{V}/tags"))["items"] if t["name"] == f"тег-{n}")
    pipeline = await admin.post(f"{V}/pipelines", {"name": f"Воронка {n}", "stages": [
        {"name": "Заявка"}, {"name": "Готово", "kind": "won"}, {"name": "Отказ", "kind": "lost"}]},
        expect=201)
    w["pipeline"] = pipeline["id"]
    if not full:
        return w
    default = next(p for p in (await admin.get(f"{V}/pipelines"))["items"] if p["is_default"])
    w["pipeline_default"] = default["id"]
    w["stage1"], w["stage2"] = default["stages"][0]["id"], default["stages"][1]["id"]
    w["reason"] = (await admin.post(f"{V}/loss-reasons", {"name": f"Дорого {n}"}, expect=201))["id"]
    w["entry"] = (await owner.post(f"{V}/deals/{w['deal']}/notes", {"text": f"{MARK} заметка"},
                                   expect=201))["id"]
    status, text = await hit(owner.client, "POST", f"{V}/timeline/{w['entry']}/attachments", owner.token,
                             multipart=True)
    assert status == 201, text
    w["attachment"] = json.loads(text)["id"]
    w["call"] = (await end(app, f"rm{n}", phone, ext=owner.user["extensions"][0], recording="rec.wav"))["id"]
    w["conversation"] = (await sms_in(app, f"SMrm{n}", phone, f"{MARK} входящее"))["conversation_id"]
    w["message"] = (await owner.post(f"{V}/messages", {"channel": "sms", "deal_id": w["deal"],
                                                       "text": f"{MARK} исходящее"}, expect=201))["id"]
    async with app[DB].transaction() as s:
        bell = await notifications.notify(s, owner.id, kind="info", title=f"{MARK} звонок")
    w["notification"] = bell["id"]
    return w


def _strip(value: Any) -> Any:
    """Without the fields reading moves, and without what the agent may create (OWN routes)."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value if not (isinstance(v, dict) and OWN_NAMES & {
            v.get("name"), v.get("title"), v.get("subject")})]
    return value


async def snapshot(admin: Api, owner: Api, w: dict[str, Any]) -> dict[str, Any]:
    """Everything the walk might change, read as the administrator (the bell and tokens as their owner)."""
    reads = [f"{V}/clients/{w['client']}", f"{V}/contacts/{w['contact']}", f"{V}/leads/{w['lead']}",
             f"{V}/deals/{w['deal']}", f"{V}/tasks/{w['task']}", f"{V}/calls/{w['call']}",
             f"{V}/conversations/{w['conversation']}", f"{V}/users/{w['owner']}",
             f"{V}/custom-fields/{w['field']}", f"{V}/tags/{w['tag']}", f"{V}/pipelines/{w['pipeline']}",
             f"{V}/deals/{w['deal']}/timeline", f"{V}/clients/{w['client']}/timeline",
             f"{V}/leads/{w['lead']}/timeline", f"{V}/settings/access", f"{V}/loss-reasons",
             f"{V}/users", f"{V}/custom-fields", f"{V}/pipelines", f"{V}/tags",
             f"{V}/clients", f"{V}/contacts", f"{V}/leads", f"{V}/deals", f"{V}/tasks", f"{V}/conversations"]
    found = {path: await _read(admin, path) for path in reads}
    found["bell"] = await _read(owner, f"{V}/notifications")
    found["tokens"] = await _read(owner, f"{V}/auth/tokens")
    download = await hit(admin.client, "GET", f"{V}/attachments/{w['attachment']}", admin.token)
    found["attachment"] = download[0]
    return found


async def _read(api: Api, path: str) -> Any:
    status, text = await hit(api.client, "GET", path, api.token)
    return _strip(json.loads(text)) if status == 200 else status


def _diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [f"{key}: {json.dumps(before[key], ensure_ascii=False)[:300]} -> "
            f"{json.dumps(after[key], ensure_ascii=False)[:300]}"
            for key in before if before[key] != after[key]]


def judge(rule: Rule, role: str | None, status: int, text: str) -> str | None:
    """None when the answer is right for this role, else what is wrong with it."""
    if status in rule.allow:
        return None
    if status >= 500:
        return "server error"
    if rule.kind == PUBLIC:
        return None
    if role is None:
        return None if status == 401 else "expected 401"
    if status == 401:
        return "a signed-in user got 401"
    leaked = MARK in text  # in an error's text too
    if role == "agent":
        if rule.kind in (FOREIGN, OWNER_OR_ADMIN):
            if leaked:
                return "foreign data leaked"
            return None if status in (403, 404) or (rule.kind == FOREIGN and not rule.ids and status == 422) \
                else "expected 404/403"
        if rule.kind == ADMIN:
            return None if status == 403 else "expected 403"
        return "foreign data leaked" if leaked else None
    if role == "manager" and rule.kind == ADMIN:
        return None if status == 403 else "expected 403"
    if role == "manager" and rule.kind == OWNER_OR_ADMIN:
        return None if status in (403, 404) else "expected 404/403"
    return None if status not in (403, 404) else "staff refused"


@dataclass
class Walk:
    client: TestClient
    world: dict[str, Any]
    failures: list[str] = field(default_factory=list)
    calls: int = 0

    async def api(self, method: str, path: str, rule: Rule, role: str | None, token: str | None,
                  world: dict[str, Any] | None = None) -> None:
        w = world or self.world
        body = rule.body(role or "nobody", w) if callable(rule.body) else rule.body
        params = {k: str(w.get(v, v)) for k, v in rule.params.items()}
        url = _fill(path, rule.ids, w)
        status, text = await hit(self.client, method, url, token, body, params, rule.multipart, rule.stream)
        self.calls += 1
        problem = judge(rule, role, status, text)
        if problem:
            self.failures.append(f"{method} {path} ({url}) as {role or 'nobody'}: {status} {problem}: "
                                 f"{text[:200]}")


async def test_role_matrix(client: TestClient, app: web.Application, admin: Api,
                           manager: Api, agent: Api, agent2: Api) -> None:
    await admin.patch(f"{V}/settings/access", {"agents_see_all": False})
    world = await build_world(app, admin, agent2, agent, 2)
    kept, other = [(await admin.post(f"{V}/clients", {"name": name}, expect=201))["id"]
                   for name in ("Слияние А", "Слияние Б")]
    world["merge"] = (await admin.post(f"{V}/clients/{kept}/merge", {"other_id": other}))["merge_id"]
    spare = await build_world(app, admin, agent2, agent, 3, full=False)  # the administrator deletes these
    tokens = {"agent": agent.token, "manager": manager.token, "admin": admin.token}

    document = await (await client.get(f"{V}/openapi.json")).json()
    documented = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    walk = Walk(client, world)
    unclassified = sorted(documented - set(API))
    walk.failures += [f"{m} {p}: not in the role matrix (add it to API)" for m, p in unclassified]
    routes = sorted(documented & set(API), key=lambda r: (r[0] == "DELETE", r[1]))
    writes = [r for r in routes if r[0] != "GET"]
    before = await snapshot(admin, agent2, world)

    # nobody, then the agent (deletions last), then the manager on administrators' routes: nothing changes
    for method, path in routes:
        await walk.api(method, path, API[(method, path)], None, None)
    for method, path in routes:
        if API[(method, path)].kind != LOGOUT:
            await walk.api(method, path, API[(method, path)], "agent", agent.token)
    own = await probe(walk, agent)
    for method, path in writes:
        if API[(method, path)].kind in (ADMIN, OWNER_OR_ADMIN):
            await walk.api(method, path, API[(method, path)], "manager", manager.token)
    walk.failures += [f"changed by the agent or the manager: {d}" for d in
                      _diff(before, await snapshot(admin, agent2, world))]

    # pages, as the agent (GET and form posts) and as the administrator
    pages = _routes(app, api=False)
    gets = sorted(p for m, p in pages if m == "GET")
    posts = sorted(p for m, p in pages if m == "POST" and "{" in p)
    walk.failures += [f"GET {p}: page not in the role matrix (add it to PAGES)"
                      for p in gets if p not in PAGES]
    walk.failures += [f"POST {p}: page form not in the role matrix (add it to PAGE_POSTS)"
                      for p in posts if p not in PAGE_POSTS]
    visits = [(p, *PAGES[p][:2], PAGES[p][2]) for p in gets if p in PAGES]
    visits += EXTRA_PAGES
    settings_posts = sorted(p for m, p in pages if m == "POST" and p.startswith("/settings"))
    for role, login in (("agent", agent), ("manager", manager), ("admin", admin)):
        client.session.cookie_jar.clear()
        csrf = await _signed_in(client, login)
        for path, kind, keys, params in visits:
            if role == "manager" and kind != ADMIN:
                continue  # staff: the API walk covers what they may open
            url = _fill(path, keys, world)
            query = {k: v[1:] if v.startswith("'") else str(world[v]) for k, v in params.items()}
            async with client.get(url, params=query, allow_redirects=False) as response:
                status, text = response.status, await response.text()
            walk.calls += 1
            problem = _judge_page(role, kind, status, text)
            if problem:
                walk.failures.append(f"GET {path} ({url}) page as {role}: {status} {problem}")
        if role == "admin":
            continue
        tried = settings_posts if role == "manager" else sorted(
            set(settings_posts) | (set(PAGE_POSTS) & set(posts)))
        for path in tried:
            url = _fill(path, PAGE_POSTS.get(path, ()), world)
            form = {"csrf_token": csrf, "section": "main", "title": "Взлом", "name": "Взлом",
                    "text": "Взлом", "subject": "Взлом", "value": "Взлом", "label": "Взлом", "login": "vzlom",
                    "stage_id": str(world["stage2"]), "assignee_id": str(agent.id), "role": "admin",
                    "password": "Long-enough-9", "agents_see_all": "1", "active": "", "pinned": "1"}
            async with client.post(url, data=form, allow_redirects=False) as response:
                status, text = response.status, await response.text()
            walk.calls += 1
            if status not in (403, 404) and not (status == 303 and path == "/bell/{id}/open"):
                walk.failures.append(f"POST {path} ({url}) page form as {role}: {status}: {text[:200]}")
        for path, data in PAGE_PROBES if role == "agent" else ():
            url = path.format(**own, **world)
            async with client.post(url, data={"csrf_token": csrf, **data(own, world)},
                                   allow_redirects=False) as response:
                status, text = response.status, await response.text()
            walk.calls += 1
            if not 400 <= status < 500 or MARK in text:
                walk.failures.append(f"probe POST {url} page form as agent: {status}: {text[:300]}")
    client.session.cookie_jar.clear()
    walk.failures += [f"changed by the agent's or the manager's page forms: {d}" for d in
                      _diff(before, await snapshot(admin, agent2, world))]

    # the manager and the administrator may do it all; deletions last, each on their own world
    for role in ("manager", "admin"):
        for method, path in routes:
            if method != "DELETE" and API[(method, path)].kind != LOGOUT:
                await walk.api(method, path, API[(method, path)], role, tokens[role])
    deletions = [r for r in routes if r[0] == "DELETE" and API[r].kind != LOGOUT]
    order = ["token", "contact", "task", "deal", "lead", "client", "tag", "field", "pipeline", "owner"]
    deletions.sort(key=lambda r: order.index(API[r].ids[0]) if API[r].ids else -1)
    for method, path in deletions:
        if API[(method, path)].kind not in (ADMIN, OWNER_OR_ADMIN):
            await walk.api(method, path, API[(method, path)], "manager", manager.token)
    for method, path in deletions:
        await walk.api(method, path, API[(method, path)], "admin", admin.token, spare)

    # logging out ends the caller's own token, not another's
    status, _ = await hit(client, "DELETE", f"{V}/auth/token", agent.token)
    walk.calls += 3
    if status not in (200, 204) or (await hit(client, "GET", f"{V}/me", agent.token))[0] != 401:
        walk.failures.append(f"DELETE {V}/auth/token as agent: {status}, the token still works")
    await manager.get(f"{V}/me")

    print(f"role matrix: {len(documented)} API routes x 4 callers, {len(PROBES)} probes, "
          f"{len(visits)} pages, {len(posts)} page forms with ids, {len(settings_posts)} settings forms, "
          f"{walk.calls} requests")
    assert not walk.failures, "\n" + "\n".join(walk.failures)


async def _signed_in(client: TestClient, api: Api) -> str:
    response = await browser_login(client, api.user["login"])
    assert response.status == 303, await response.text()
    return await session_csrf(client)


def _judge_page(role: str, kind: str, status: int, text: str) -> str | None:
    if status >= 500:
        return "server error"
    if role == "admin":
        return None if status in (200, 204) or (status == 303 and kind != FOREIGN) else "expected 200"
    if kind == ADMIN:
        return None if status in (303, 403) else "expected 403 or a redirect"
    if MARK in text:
        return "foreign data shown"
    if kind == FOREIGN:
        return None if status in (403, 404, 204) else "expected 404/403"
    return None if status in (200, 204, 303) else "expected 200"


# --- granted by the work: a call that rang the agent, a conversation assigned to them (issue 15) ---------

GRANT_PHONE = "+79161117001"


async def _foreign_client(admin: Api, manager: Api, phone: str, name: str) -> dict[str, Any]:
    """A client of the manager's with an open deal and a won one (both the manager's)."""
    client = await manager.post(f"{V}/clients", {"name": name, "phones": [phone], "manager_id": manager.id},
                                expect=201)
    open_deal = await manager.post(f"{V}/deals", {"title": f"{name}: открытая", "client_id": client["id"]},
                                   expect=201)
    closed = await manager.post(f"{V}/deals", {"title": f"{name}: выиграна", "client_id": client["id"]},
                                expect=201)
    default = next(p for p in (await admin.get(f"{V}/pipelines"))["items"] if p["is_default"])
    won = next(s for s in default["stages"] if s["kind"] == "won")
    await manager.post(f"{V}/deals/{closed['id']}/move", {"stage_id": won["id"], "result": "Подписали"})
    return {"client": client["id"], "open": open_deal["id"], "closed": closed["id"]}


async def _sees(api: Api, w: dict[str, Any], call_id: int | None = None) -> bool:
    """Whether ``api`` opens the client and its open deal (never its closed one), also in the lists; all
    or nothing (a half-open card is a failure)."""
    client = (await api.call("GET", f"{V}/clients/{w['client']}", expect=None)) or {}
    deal = (await api.call("GET", f"{V}/deals/{w['open']}", expect=None)) or {}
    await api.get(f"{V}/deals/{w['closed']}", expect=404)
    listed = {c["id"] for c in (await api.get(f"{V}/clients"))["items"]}
    deals = {d["id"] for d in (await api.get(f"{V}/deals", params={"client": str(w["client"])}))["items"]}
    assert w["closed"] not in deals
    seen = [client.get("id") == w["client"], deal.get("id") == w["open"], w["client"] in listed,
            w["open"] in deals]
    if call_id is not None:
        seen.append(((await api.call("GET", f"{V}/calls/{call_id}", expect=None)) or {}).get("id") == call_id)
    assert all(seen) or not any(seen), seen
    return all(seen)


async def _move_grants(app: web.Application, user_id: int, back: Any) -> None:
    from sqlalchemy import update

    from hub.crm.models import AccessGrant
    from hub.crm.models import utcnow as now

    async with app[DB].transaction() as s:
        await s.execute(update(AccessGrant).where(AccessGrant.user_id == user_id)
                        .values(granted_at=now() - back))


async def test_a_call_grants_the_rung_and_the_answering_agent_the_callers_card(
        client: TestClient, app: web.Application, admin: Api, manager: Api, agent: Api, agent2: Api) -> None:
    from datetime import timedelta

    from hub.crm import call_intake
    from hub.crm.ports import CallAnsweredFact, CallRinging, CallSettings

    await admin.patch(f"{V}/settings/access", {"agents_see_all": False})
    assert (await admin.get(f"{V}/settings/access"))["call_grant"] == "end_of_day"
    w = await _foreign_client(admin, manager, GRANT_PHONE, "ООО Чужой звонок")
    assert not await _sees(agent, w) and not await _sees(agent2, w)

    pop = await call_intake.call_ringing(app[DB], CallRinging(
        call_key="grant-1", direction="inbound", number="8 916 111-70-01", did=None, extension="101"),
        CallSettings())
    call_id = pop["call_id"]
    assert await _sees(agent, w, call_id)
    assert not await _sees(agent2, w)  # a colleague whose phone did not ring
    found = (await agent.get(f"{V}/identify", params={"phone": GRANT_PHONE}))["matches"][0]
    assert found["access"] is True and [d["id"] for d in found["open_deals"]] == [w["open"]]

    # whoever answers gets it too
    await call_intake.call_answered(app[DB], CallAnsweredFact(
        call_key="grant-1", direction="inbound", number=GRANT_PHONE, did=None, extension="102"),
        CallSettings())
    assert await _sees(agent2, w, call_id)

    # the page too, not only the API
    client.session.cookie_jar.clear()
    await _signed_in(client, agent)
    for path, name in ((f"/clients/{w['client']}", "ООО Чужой звонок"),
                       (f"/deals/{w['open']}", "ООО Чужой звонок: открытая")):
        async with client.get(path, allow_redirects=False) as response:
            assert response.status == 200 and name in await response.text(), path
    async with client.get(f"/deals/{w['closed']}", allow_redirects=False) as response:
        assert response.status == 404
    client.session.cookie_jar.clear()

    # for as long as the setting says: until the end of the day by default ...
    await _move_grants(app, agent.id, timedelta(days=1, hours=1))
    assert not await _sees(agent, w)
    await _move_grants(app, agent.id, timedelta(minutes=1))
    assert await _sees(agent, w)
    # ... a number of hours, or never
    await admin.patch(f"{V}/settings/access", {"call_grant": "hours", "call_grant_hours": 2})
    await _move_grants(app, agent.id, timedelta(hours=1))
    assert await _sees(agent, w)
    await _move_grants(app, agent.id, timedelta(hours=3))
    assert not await _sees(agent, w)
    assert await _sees(agent2, w)  # (answered just now)
    await admin.patch(f"{V}/settings/access", {"call_grant": "off"})
    assert not await _sees(agent2, w)
    assert (await admin.get(f"{V}/settings/access"))["call_grant_hours"] == 2
    for bad in ({"call_grant": "week"}, {"call_grant_hours": 0}, {"call_grant_hours": "3"}):
        await admin.patch(f"{V}/settings/access", bad, expect=422)
    await agent.patch(f"{V}/settings/access", {"call_grant": "end_of_day"}, expect=403)

    # the settings page next to «Agents see all clients and deals»
    csrf = await _signed_in(client, admin)
    form = {"csrf_token": csrf, "call_grant": "hours", "call_grant_hours": "сутки"}
    async with client.post("/settings/access", data=form, allow_redirects=False) as response:
        text = await response.text()
    assert response.status == 422 and "Введите целое число." in text and 'aria-invalid="true"' in text
    form["call_grant_hours"] = "12"
    async with client.post("/settings/access", data=form, allow_redirects=False) as response:
        assert response.status == 303
    async with client.get("/settings/access") as response:
        text = await response.text()
    assert 'value="hours" selected' in text and 'value="12"' in text
    assert (await admin.get(f"{V}/settings/access"))["call_grant"] == "hours"
    client.session.cookie_jar.clear()


async def test_the_assignee_of_a_conversation_sees_its_client_while_assigned(
        client: TestClient, app: web.Application, admin: Api, manager: Api, agent: Api, agent2: Api) -> None:
    await admin.patch(f"{V}/settings/access", {"agents_see_all": False})
    w = await _foreign_client(admin, manager, "+79161117002", "ООО Чужой чат")
    chat = (await sms_in(app, "SMgrant1", "+79161117002", "Здравствуйте"))["conversation_id"]
    assert not await _sees(agent, w)
    await manager.patch(f"{V}/conversations/{chat}", {"assignee_id": agent.id})
    assert await _sees(agent, w) and not await _sees(agent2, w)
    await manager.patch(f"{V}/conversations/{chat}", {"assignee_id": agent2.id})
    assert not await _sees(agent, w) and await _sees(agent2, w)


async def test_a_card_one_may_not_open_is_a_404_page_in_the_readers_language_with_the_menu(
        client: TestClient, admin: Api, manager: Api, agent: Api) -> None:
    await admin.patch(f"{V}/settings/access", {"agents_see_all": False})
    w = await _foreign_client(admin, manager, "+79161117003", "ООО Недоступный")
    client.session.cookie_jar.clear()
    await _signed_in(client, agent)
    async with client.get(f"/clients/{w['client']}", headers={"Referer": str(client.make_url("/calls"))},
                          allow_redirects=False) as response:
        text = await response.text()
    assert response.status == 404
    assert "Страница не найдена" in text and "Такого клиента нет, или он вам недоступен." in text
    assert "not found" not in text and "ООО Недоступный" not in text
    assert 'class="nav"' in text and 'href="/clients"' in text and 'href="/calls">Назад' in text
    async with client.get(f"/deals/{w['open']}", headers={"Accept-Language": "en"}) as response:
        text = await response.text()
    # in the user's language, whatever the browser asks
    assert response.status == 404 and "Такой сделки нет, или она вам недоступна." in text
    async with client.get("/no-such-page") as response:
        text = await response.text()
    assert response.status == 404 and 'class="nav"' in text
    assert "Такой страницы нет, или она вам недоступна." in text
    client.session.cookie_jar.clear()
    async with client.get(f"/clients/{w['client']}", allow_redirects=False) as response:
        assert response.status == 303  # signed out: to the login form, as before
