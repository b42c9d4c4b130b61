"""The call journal: reading stored calls and their recordings, with the access rule of the CRM.

An agent sees the calls they took (or were the last one tried for) and the calls of the clients,
leads and deals they may see; managers and admins (and agents with ``agents_see_all``) see all.
Only finished calls are listed; the intake (``hub.crm.call_intake``) writes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import access, resources
from hub.crm.errors import NotFound, ValidationError
from hub.crm.models import CALL_DIRECTIONS, Call, Client, Deal, Lead, User, UserExtension
from hub.crm.paging import Page, clamp_limit, decode_cursor, encode_cursor
from hub.crm.resources import Ref
from hub.crm.timeline import refs
from hub.crm.validate import iso
from hub.serialise import plain
from hub.texts import N_

FINAL_STATUSES = ("answered", "missed", "abandoned", "busy", "failed")

# how a call that was not answered ended, for texts stored in the hub's language (``hub.texts.say``)
CALL_STATUS_WORDS = {"missed": N_("missed"), "abandoned": N_("abandoned"), "busy": N_("busy"),
                     "failed": N_("failed")}


def recording_url(call: Call) -> str | None:
    return f"/api/v1/calls/{call.id}/recording" if call.recording else None


def recordings_of(call: Call) -> list[dict[str, Any]]:
    """The call's recordings in the order they were made, each ``{"file", "agent_extension"}`` (a row
    with only ``recording`` has that one, its agent unknown)."""
    found = [{"file": r["file"], "agent_extension": r.get("agent_extension") or None}
             for r in call.recordings or ()
             if isinstance(r, dict) and isinstance(r.get("file"), str) and r["file"]]
    if not found and call.recording:
        found = [{"file": call.recording, "agent_extension": None}]
    return found


def _recordings(call: Call) -> list[resources.Recording]:
    """The API's ``recordings``: each one's URL (``/recordings/{n}``, n from 1) and its leg's agent."""
    return [resources.Recording(url=f"/api/v1/calls/{call.id}/recordings/{n}",
                                agent_extension=r["agent_extension"])
            for n, r in enumerate(recordings_of(call), start=1)]


def recording_refs(call: Call) -> list[dict[str, Any]]:
    return [plain(r) for r in _recordings(call)]


async def call_dicts(session: AsyncSession, calls: list[Call]) -> list[dict[str, Any]]:
    """API.md's call shape, plus the names of the agent, client and lead for the journal."""
    agents = await refs(session, User.id, User.name, (c.agent_id for c in calls))
    clients = await refs(session, Client.id, Client.name, (c.client_id for c in calls))
    leads = await refs(session, Lead.id, Lead.name, (c.lead_id for c in calls))
    return [call_shape(c, agents[c.agent_id].name if c.agent_id in agents else None,
                       clients.get(c.client_id) if c.client_id else None,
                       leads.get(c.lead_id) if c.lead_id else None) for c in calls]


def call_shape(c: Call, agent_name: str | None, client: Ref | Mapping[str, Any] | None,
               lead: Ref | Mapping[str, Any] | None) -> dict[str, Any]:
    """One call in API.md's shape, the names already known (``client`` / ``lead``: a ``Ref``, or its
    ``{"id", "name"}``)."""
    agent = None
    if c.agent_id is not None or c.agent_extension:
        agent = resources.CallAgent(id=c.agent_id, name=agent_name if c.agent_id else None,
                                    extension=c.agent_extension)
    return plain(resources.Call(
        id=c.id, call_key=c.linkedid, direction=c.direction, status=c.status,
        external_number=c.external_number, did=c.did, agent=agent, started_at=iso(c.started_at),
        answered_at=iso(c.answered_at), ended_at=iso(c.ended_at), wait_seconds=c.wait_seconds,
        talk_seconds=c.talk_seconds, hangup_cause=c.hangup_cause, recording_url=recording_url(c),
        recordings=_recordings(c), client_id=c.client_id, client=_as_ref(client), contact_id=c.contact_id,
        lead_id=c.lead_id, lead=_as_ref(lead), deal_id=c.deal_id, timeline_entry_id=c.timeline_entry_id,
        callback_task_id=c.callback_task_id, created_at=iso(c.created_at)))


def _as_ref(value: Ref | Mapping[str, Any] | None) -> Ref | None:
    return Ref(id=value["id"], name=value["name"]) if isinstance(value, Mapping) else value


async def call_dict(session: AsyncSession, call: Call) -> dict[str, Any]:
    return (await call_dicts(session, [call]))[0]


async def calls_filter(session: AsyncSession, actor: User) -> ColumnElement[bool]:
    if await access.sees_all(session, actor):
        return true()
    return or_(
        Call.agent_id == actor.id,
        Call.client_id.in_(select(Client.id).where(await access.clients_filter(session, actor))),
        Call.lead_id.in_(select(Lead.id).where(await access.leads_filter(session, actor))),
        Call.deal_id.in_(select(Deal.id).where(await access.deals_filter(session, actor))),
    )


def _check_id(name: str, value: Any, errors: dict[str, str]) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or not 0 < value <= 2**62):
        errors[name] = "must be an id"


def _statuses(status: Any, errors: dict[str, str]) -> list[str] | None:
    if status is None:
        return None
    items = status.split(",") if isinstance(status, str) else status
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        errors["status"] = f"must be one or more of: {', '.join(FINAL_STATUSES)}"
        return None
    items = [i.strip() for i in items if i.strip()]
    if not items or any(i not in FINAL_STATUSES for i in items):
        errors["status"] = f"must be one or more of: {', '.join(FINAL_STATUSES)}"
        return None
    return items


async def list_calls(session: AsyncSession, actor: User, *, status: Any = None, direction: str | None = None,
                     agent_id: int | None = None, since: datetime | None = None,
                     until: datetime | None = None, cursor: str | None = None,
                     limit: int | None = None) -> Page:
    """Finished calls, newest first. ``status``: one status or a comma-separated list (``missed,abandoned``);
    ``since`` / ``until``: the call's start in ``[since, until)``."""
    errors: dict[str, str] = {}
    statuses = _statuses(status, errors)
    if direction is not None and direction not in CALL_DIRECTIONS:
        errors["direction"] = f"must be one of: {', '.join(CALL_DIRECTIONS)}"
    _check_id("agent", agent_id, errors)
    for name, value in (("since", since), ("until", until)):
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            errors[name] = "must be an ISO 8601 date and time"
    if not errors and since is not None and until is not None and until <= since:
        errors["until"] = "must be after since"
    if errors:
        raise ValidationError(errors)
    after = decode_cursor(cursor)
    limit = clamp_limit(limit)
    query = select(Call).where(Call.ended_at.is_not(None), await calls_filter(session, actor))
    if statuses:
        query = query.where(Call.status.in_(statuses))
    if direction is not None:
        query = query.where(Call.direction == direction)
    if agent_id is not None:
        query = query.where(Call.agent_id == agent_id)
    if since is not None:
        query = query.where(Call.started_at >= since)
    if until is not None:
        query = query.where(Call.started_at < until)
    if after is not None:
        query = query.where(Call.id < after)
    rows = list((await session.scalars(query.order_by(Call.id.desc()).limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(await call_dicts(session, rows), encode_cursor(rows[-1].id) if more and rows else None)


async def visible_call(session: AsyncSession, actor: User, call_id: Any, *, lock: bool = False) -> Call:
    """The call if the actor may see it — by the journal's rule, or because their phone rang for it
    (the screen-pop's "create a lead" during the call) — else NotFound."""
    if isinstance(call_id, bool) or not isinstance(call_id, int) or not 0 < call_id <= 2**62:
        raise NotFound("call not found")
    query = select(Call).where(Call.id == call_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    call = await session.scalar(query)
    if call is None:
        raise NotFound("call not found")
    if actor.id in {int(u) for u in (call.rung_user_ids or [])}:
        return call
    seen = await session.scalar(select(Call.id).where(Call.id == call.id, await calls_filter(session, actor)))
    if seen is None:
        raise NotFound("call not found")
    return call


async def get_call(session: AsyncSession, actor: User, call_id: Any) -> dict[str, Any]:
    return await call_dict(session, await visible_call(session, actor, call_id))


def recording_basename(name: str | None) -> str | None:
    """The recording's base name (the file under ``recordings_dir`` or ``recordings_url``), or None."""
    if not name:
        return None
    base = Path(name.replace("\\", "/")).name
    if base in ("", ".", "..") or "\x00" in base:
        return None
    return base


def resolve_recording(name: str | None, recordings_dir: str | Path | None) -> Path | None:
    """The recording's file under ``recordings_dir`` by its base name, or None (none, or not there). A
    symbolic link is followed only when it stays inside the folder."""
    base = recording_basename(name)
    if base is None or not recordings_dir:
        return None
    folder = Path(recordings_dir).resolve()
    path = (folder / base).resolve()
    return path if path.parent == folder and path.is_file() else None


async def recording_path(session: AsyncSession, actor: User, call_id: Any,
                         recordings_dir: str | Path | None, number: int = 1) -> Path | None:
    """The file of the call's recording ``number`` (from 1; the first by default); NotFound when the
    actor may not see the call, None when the call has no such recording or its file is missing."""
    return resolve_recording(await recording_name(session, actor, call_id, number), recordings_dir)


async def recording_name(session: AsyncSession, actor: User, call_id: Any, number: int = 1) -> str | None:
    """The base name of the call's recording ``number`` (from 1), or None when it has no such one
    (NotFound when the actor may not see the call)."""
    found = recordings_of(await visible_call(session, actor, call_id))
    return recording_basename(found[number - 1]["file"]) if 1 <= number <= len(found) else None


async def users_by_extension(session: AsyncSession, extensions: set[str]) -> dict[str, User]:
    """Active users by the extensions that ring them (one query)."""
    wanted = {e for e in extensions if isinstance(e, str) and e and len(e) <= 32}
    if not wanted:
        return {}
    rows = await session.execute(
        select(UserExtension.extension, User).join(User, User.id == UserExtension.user_id)
        .where(UserExtension.extension.in_(wanted), User.active.is_(True)))
    return {ext: user for ext, user in rows}
