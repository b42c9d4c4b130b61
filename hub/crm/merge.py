"""Merging two clients into one, field by field, and undoing it within a day.

Everything of the removed client moves to the kept one: contact points (but those the kept client
has already), contact persons, deals, tasks, timeline entries, calls, conversations (with their
messages and attachments, which hang on those) and the leads converted into it; tags are joined.
What moved and the removed client's row are kept in ``client_merges`` so that ``undo_merge`` can put
everything back for ``UNDO_WINDOW``. Staff only; one unit of work each.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import access, audit, clients, events, leads, timeline
from hub.crm.errors import Conflict, NotFound, ValidationError
from hub.crm.models import (
    Call,
    Client,
    ClientMerge,
    ContactPerson,
    ContactPoint,
    Conversation,
    Deal,
    Lead,
    Tag,
    Task,
    TimelineEntry,
    User,
    client_tags,
    utcnow,
)
from hub.crm.validate import Fields, iso, parse_datetime

UNDO_WINDOW = timedelta(days=1)
FIELDS = ("kind", "name", "full_name", "inn", "kpp", "okpo", "manager_id", "relationship_type", "region",
          "industry", "comment")
SIDES = ("kept", "other")
# every table whose rows belong to a client through ``client_id`` (contact points are handled apart)
MOVED: dict[str, Any] = {"contacts": ContactPerson, "deals": Deal, "tasks": Task,
                         "timeline_entries": TimelineEntry, "calls": Call, "conversations": Conversation}
SNAPSHOT = (*FIELDS, "id", "custom")


class UndoExpired(Conflict):
    code = "undo_expired"


def _choices(v: Fields) -> dict[str, str]:
    raw = v.mapping("fields") or {}
    choices = {}
    for name, side in raw.items():
        if name not in FIELDS:
            v.fail(f"fields.{str(name)[:64]}", f"unknown field; use: {', '.join(FIELDS)}")
        elif side not in SIDES:
            v.fail(f"fields.{name}", "must be \"kept\" or \"other\"")
        else:
            choices[name] = side
    return choices


def _empty(value: Any) -> bool:
    return value is None or value == ""


def _snapshot(client: Client) -> dict[str, Any]:
    data = {name: getattr(client, name) for name in SNAPSHOT}
    data["created_at"] = iso(client.created_at)
    return data


async def merge_clients(session: AsyncSession, actor: User, kept_id: Any, data: Any) -> dict[str, Any]:
    """Merge ``data["other_id"]`` into ``kept_id``. ``data["fields"]``: ``{field: "kept"|"other"}``,
    which value each field keeps; a field not named keeps the kept client's value, or the other's when
    the kept one is empty. → ``{"client", "merge_id"}``."""
    access.require_staff(actor)
    kept = await clients.require_client(session, actor, kept_id)
    v = Fields(data)
    other_id = v.id("other_id", required=True)
    choices = _choices(v)
    v.check()
    if other_id == kept.id:
        raise ValidationError({"other_id": "must be another client"})
    try:
        other = await clients.require_client(session, actor, other_id)
    except NotFound:
        raise ValidationError({"other_id": "no such client"}) from None

    before = {}
    for name in FIELDS:
        side = choices.get(name, "other" if _empty(getattr(kept, name)) else "kept")
        if side == "other" and getattr(other, name) != getattr(kept, name):
            before[name] = getattr(kept, name)
            setattr(kept, name, getattr(other, name))
    custom = {**(other.custom or {}), **(kept.custom or {})}
    if custom != (kept.custom or {}):
        before["custom"] = kept.custom or {}
        kept.custom = custom
    kept.updated_at = utcnow()
    removed = _snapshot(other)
    removed["tag_ids"] = list((await session.scalars(
        select(client_tags.c.tag_id).where(client_tags.c.client_id == other.id))).all())
    moved = await _move_rows(session, other.id, kept.id)
    removed["points"] = await _left_points(session, other.id)
    moved["client_tags"] = await _join_tags(session, kept.id, removed["tag_ids"])

    await session.execute(delete(Client).where(Client.id == other.id),
                          execution_options={"synchronize_session": False})
    session.expunge(other)
    merge = ClientMerge(kept_id=kept.id, removed_id=removed["id"], removed=removed, kept_before=before,
                        moved=moved, author_id=actor.id, merged_at=utcnow())
    session.add(merge)
    await session.flush()
    await timeline.add_entry(session, kind="system", client_id=kept.id, author_id=actor.id,
                             payload={"event": "client_merged", "merge_id": merge.id,
                                      "other_id": removed["id"], "other_name": removed["name"]})
    audit.record(session, "client_merged", actor=actor, target=("client", kept.id),
                 details={"other_id": removed["id"], "other_name": removed["name"], "merge_id": merge.id})
    result = await clients.get_client(session, actor, kept.id)
    events.emit(session, "client.updated", {"client": result}, scope={"manager_id": result["manager_id"]})
    events.emit(session, "client.deleted", {"client": {"id": removed["id"], "name": removed["name"],
                                                       "manager_id": removed["manager_id"]}},
                scope={"manager_id": removed["manager_id"]})
    return {"client": result, "merge_id": merge.id}


async def _move_rows(session: AsyncSession, from_id: int, to_id: int) -> dict[str, list[int]]:
    moved: dict[str, list[int]] = {}
    plain = {"synchronize_session": False}
    for table, model in MOVED.items():
        query = select(model.id).where(model.client_id == from_id)
        ids: list[int] = list((await session.scalars(query)).all())
        if ids:
            await session.execute(update(model).where(model.id.in_(ids)).values(client_id=to_id),
                                  execution_options=plain)
        moved[table] = ids
    leads = list((await session.scalars(select(Lead.id).where(Lead.converted_client_id == from_id))).all())
    if leads:
        await session.execute(update(Lead).where(Lead.id.in_(leads)).values(converted_client_id=to_id),
                              execution_options=plain)
    moved["leads"] = leads
    kept_points = select(ContactPoint.value).where(ContactPoint.client_id == to_id)
    points = list((await session.scalars(select(ContactPoint.id).where(
        ContactPoint.client_id == from_id,
        ContactPoint.value.not_in(kept_points)))).all())
    if points:
        await session.execute(update(ContactPoint).where(ContactPoint.id.in_(points)).values(client_id=to_id),
                              execution_options=plain)
    moved["contact_points"] = points
    return moved


async def _left_points(session: AsyncSession, client_id: int) -> list[dict[str, Any]]:
    """The removed client's points the kept one has already: they go with it, and come back on undo."""
    rows = (await session.scalars(select(ContactPoint).where(ContactPoint.client_id == client_id))).all()
    return [{"kind": p.kind, "value": p.value, "raw": p.raw, "tail": p.tail, "label": p.label} for p in rows]


async def _join_tags(session: AsyncSession, kept_id: int, tag_ids: list[int]) -> list[int]:
    have: set[int] = set((await session.scalars(
        select(client_tags.c.tag_id).where(client_tags.c.client_id == kept_id))).all())
    added = [t for t in tag_ids if t not in have]
    if added:
        await session.execute(insert(client_tags), [{"client_id": kept_id, "tag_id": t} for t in added])
    return added


# --- undo ------------------------------------------------------------------------------------------------

def _merge_dict(merge: ClientMerge) -> dict[str, Any]:
    return {"id": merge.id, "kept_id": merge.kept_id, "removed_id": merge.removed_id,
            "removed_name": merge.removed.get("name", ""), "merged_at": iso(merge.merged_at),
            "undo_until": iso(merge.merged_at + UNDO_WINDOW), "undone_at": iso(merge.undone_at)}


async def recent_merges(session: AsyncSession, actor: User, client_id: int) -> list[dict[str, Any]]:
    """The merges into this client that can still be undone (staff only; others get none)."""
    if not access.is_staff(actor):
        return []
    since = utcnow() - UNDO_WINDOW
    rows = (await session.scalars(select(ClientMerge).where(
        ClientMerge.kept_id == client_id, ClientMerge.undone_at.is_(None), ClientMerge.merged_at > since)
        .order_by(ClientMerge.id.desc()))).all()
    return [_merge_dict(m) for m in rows]


async def undo_merge(session: AsyncSession, actor: User, merge_id: Any) -> dict[str, Any]:
    """Put the removed client back with everything that moved, and the kept client's fields as they
    were. Refused (``undo_expired``) after ``UNDO_WINDOW``, and when undone already."""
    access.require_staff(actor)
    merge = await session.get(ClientMerge, merge_id) if isinstance(merge_id, int) else None
    if merge is None:
        raise NotFound("merge not found")
    if merge.undone_at is not None:
        raise Conflict("the merge is undone already")
    if utcnow() - merge.merged_at > UNDO_WINDOW:
        raise UndoExpired("a merge can be undone only within a day")
    removed = merge.removed
    if await session.get(Client, merge.removed_id) is not None:  # pragma: no cover - ids are not reused
        raise Conflict("the removed client's id is taken")
    row = {name: removed.get(name) for name in SNAPSHOT}
    created = parse_datetime(removed.get("created_at")) if removed.get("created_at") else None
    client = Client(**row, created_at=created or utcnow(), updated_at=utcnow())
    session.add(client)
    await session.flush()
    await _restore(session, merge, client.id)

    kept = await session.get(Client, merge.kept_id)
    assert kept is not None  # the merge row goes with the kept client (ON DELETE CASCADE)
    for name, value in merge.kept_before.items():
        setattr(kept, name, value)
    kept.updated_at = utcnow()
    merge.undone_at = utcnow()
    await session.flush()
    await timeline.add_entry(session, kind="system", client_id=kept.id, author_id=actor.id,
                             payload={"event": "client_merge_undone", "merge_id": merge.id,
                                      "other_id": client.id, "other_name": client.name})
    audit.record(session, "client_merge_undone", actor=actor, target=("client", kept.id),
                 details={"other_id": client.id, "merge_id": merge.id})
    restored = await clients.get_client(session, actor, client.id)
    events.emit(session, "client.created", {"client": restored}, scope={"manager_id": restored["manager_id"]})
    return {"client": restored, "kept": await clients.get_client(session, actor, kept.id)}


async def _restore(session: AsyncSession, merge: ClientMerge, removed_id: int) -> None:
    plain = {"synchronize_session": False}
    moved = merge.moved
    for table, model in MOVED.items():
        ids = moved.get(table) or []
        if ids:
            await session.execute(update(model).where(model.id.in_(ids), model.client_id == merge.kept_id)
                                  .values(client_id=removed_id), execution_options=plain)
    if moved.get("leads"):
        await session.execute(update(Lead).where(Lead.id.in_(moved["leads"]))
                              .values(converted_client_id=removed_id), execution_options=plain)
    if moved.get("contact_points"):
        await session.execute(update(ContactPoint).where(ContactPoint.id.in_(moved["contact_points"]),
                                                         ContactPoint.client_id == merge.kept_id)
                              .values(client_id=removed_id), execution_options=plain)
    session.add_all(ContactPoint(client_id=removed_id, **point) for point in merge.removed.get("points", []))
    if moved.get("client_tags"):
        await session.execute(delete(client_tags).where(client_tags.c.client_id == merge.kept_id,
                                                        client_tags.c.tag_id.in_(moved["client_tags"])))
    tag_ids = merge.removed.get("tag_ids") or []
    if tag_ids:  # but those deleted since
        tag_ids = list((await session.scalars(select(Tag.id).where(Tag.id.in_(tag_ids)))).all())
    if tag_ids:
        await session.execute(insert(client_tags), [{"client_id": removed_id, "tag_id": t} for t in tag_ids])
    await session.flush()





# --- a lead into an existing client -----------------------------------------------------------------------

async def merge_lead(session: AsyncSession, actor: User, lead_id: Any, data: Any) -> dict[str, Any]:
    """The lead turns out to be an existing client (``data["client_id"]``): as a conversion, but into
    that client — the lead's phones and e-mails the client lacks, its deals, timeline, tasks, calls
    and conversations go to the client, and the lead is marked converted into it. Staff only; not
    undone (a conversion is not either)."""
    access.require_staff(actor)
    lead = await session.get(Lead, lead_id, populate_existing=True) if isinstance(lead_id, int) else None
    if lead is None or not await access.can_see_lead(session, actor, lead):
        raise NotFound("lead not found")
    v = Fields(data)
    client_id = v.id("client_id", required=True)
    v.check()
    try:
        client = await clients.require_client(session, actor, client_id)
    except NotFound:
        raise ValidationError({"client_id": "no such client"}) from None
    if lead.converted_at is not None or lead.converted_client_id is not None:
        raise Conflict("the lead is converted already")
    plain = {"synchronize_session": False}
    kept_points = select(ContactPoint.value).where(ContactPoint.client_id == client.id)
    await session.execute(update(ContactPoint).where(ContactPoint.lead_id == lead.id,
                                                     ContactPoint.value.not_in(kept_points))
                          .values(lead_id=None, client_id=client.id), execution_options=plain)
    await session.execute(delete(ContactPoint).where(ContactPoint.lead_id == lead.id),  # the client has them
                          execution_options=plain)
    await session.execute(update(Deal).where(Deal.lead_id == lead.id).values(client_id=client.id),
                          execution_options=plain)
    await session.execute(update(TimelineEntry).where(TimelineEntry.lead_id == lead.id)
                          .values(client_id=client.id), execution_options=plain)
    for model in (Task, Call, Conversation):
        await session.execute(update(model).where(model.lead_id == lead.id, model.client_id.is_(None))
                              .values(client_id=client.id), execution_options=plain)
    lead.converted_at, lead.converted_client_id, lead.unsorted = utcnow(), client.id, False
    await session.flush()
    await timeline.add_entry(session, kind="system", client_id=client.id, author_id=actor.id,
                             payload={"event": "lead_merged", "lead_id": lead.id, "lead_name": lead.name})
    result = await clients.get_client(session, actor, client.id)
    events.emit(session, "client.updated", {"client": result}, scope={"manager_id": result["manager_id"]})
    lead_dict = (await leads.lead_dicts(session, [lead]))[0]
    events.emit(session, "lead.updated", {"lead": lead_dict},
                scope={"manager_id": lead.manager_id, "unassigned": lead.manager_id is None})
    return {"client": result}
