"""Lists of deals: the deal list with its filters and search, the kanban columns and their totals."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import access, search
from hub.crm.deals.records import deal_dicts, deal_query, roubles
from hub.crm.errors import NotFound, ValidationError
from hub.crm.models import (
    Client,
    ContactPerson,
    ContactPoint,
    Deal,
    Lead,
    Pipeline,
    Stage,
    Tag,
    Task,
    User,
    deal_tags,
)
from hub.crm.paging import Page, after_date, clamp_limit, decode_cursor, encode_cursor, encode_date_cursor
from hub.crm.validate import clean_text

# --- lists --------------------------------------------------------------------------------------------

def _search(q: str, region: str) -> ColumnElement[bool]:
    """Title, client/lead name, or a phone / e-mail of the client, its contact persons or the lead."""
    conditions: list[ColumnElement[bool]] = [
        search.contains(Deal.title, q),
        Deal.client_id.in_(select(Client.id).where(search.contains(Client.name, q))),
        Deal.lead_id.in_(select(Lead.id).where(search.contains(Lead.name, q))),
    ]
    point = search.contact_point_match(q, region)
    if point is not None:
        conditions += [
            Deal.client_id.in_(select(ContactPoint.client_id)
                               .where(point, ContactPoint.client_id.is_not(None))),
            Deal.client_id.in_(select(ContactPerson.client_id)
                               .join(ContactPoint, ContactPoint.contact_id == ContactPerson.id).where(point)),
            Deal.lead_id.in_(select(ContactPoint.lead_id).where(point, ContactPoint.lead_id.is_not(None))),
        ]
    return or_(*conditions)


async def deal_filters(session: AsyncSession, actor: User, *, pipeline_id: Any = None, stage_id: Any = None,
                   responsible_id: Any = None, tag: Any = None, client_id: Any = None, lead_id: Any = None,
                   q: Any = None, without_tasks: bool = False, region: str = "RU") -> list[Any]:
    errors = {}
    for name, value in (("pipeline_id", pipeline_id), ("stage_id", stage_id),
                        ("responsible_id", responsible_id), ("client_id", client_id), ("lead_id", lead_id)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 < value <= 2**62):
            errors[name] = "must be an id"
    for name, value in (("tag", tag), ("q", q)):
        if value is not None and (not isinstance(value, str) or clean_text(value) or len(value) > 300):
            errors[name] = "must be a text of at most 300 characters"
    if errors:
        raise ValidationError(errors)
    where: list[Any] = [await access.deals_filter(session, actor)]
    if pipeline_id is not None:
        where.append(Deal.pipeline_id == pipeline_id)
    if stage_id is not None:
        where.append(Deal.stage_id == stage_id)
    if responsible_id is not None:
        where.append(Deal.responsible_id == responsible_id)
    if client_id is not None:
        where.append(Deal.client_id == client_id)
    if lead_id is not None:
        where.append(Deal.lead_id == lead_id)
    if tag:
        where.append(Deal.id.in_(select(deal_tags.c.deal_id).join(Tag, Tag.id == deal_tags.c.tag_id)
                                 .where(Tag.name == tag.strip())))
    if q and q.strip():
        where.append(_search(q.strip(), region))
    if without_tasks:
        where.append(~select(Task.id).where(Task.deal_id == Deal.id, Task.completed_at.is_(None)).exists())
    return where


async def list_deals(session: AsyncSession, actor: User, *, pipeline_id: int | None = None,
                     stage_id: int | None = None, responsible_id: int | None = None, tag: str | None = None,
                     client_id: int | None = None, lead_id: int | None = None, q: str | None = None,
                     cursor: str | None = None, limit: int | None = None, without_tasks: bool = False,
                     region: str = "RU") -> Page:
    """Newest first (id desc). ``q``: title, client/lead name, or their phone or e-mail in any format."""
    after = decode_cursor(cursor)
    limit = clamp_limit(limit)
    where = await deal_filters(session, actor, pipeline_id=pipeline_id, stage_id=stage_id,
                           responsible_id=responsible_id, tag=tag, client_id=client_id, lead_id=lead_id,
                           q=q, without_tasks=without_tasks, region=region)
    if after is not None:
        where.append(Deal.id < after)
    query = deal_query().where(*where).order_by(Deal.id.desc()).limit(limit + 1)
    rows = list((await session.scalars(query)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(await deal_dicts(session, rows), encode_cursor(rows[-1].id) if more and rows else None)


def encode_stage_cursor(deal: Deal) -> str:
    return encode_date_cursor(deal.next_interaction_at, deal.id)


async def list_stage_deals(session: AsyncSession, actor: User, stage_id: int, *, limit: int | None = None,
                           cursor: str | None = None, responsible_id: int | None = None,
                           tag: str | None = None) -> Page:
    """A kanban column: the nearest planned interaction first, deals without one last."""
    limit = clamp_limit(limit)
    if stage_id is None:
        raise ValidationError({"stage_id": "is required"})
    where = await deal_filters(session, actor, stage_id=stage_id, responsible_id=responsible_id, tag=tag)
    if cursor:
        where.append(after_date(Deal.next_interaction_at, Deal.id, cursor))
    query = (deal_query().where(*where)
             .order_by(Deal.next_interaction_at.asc().nulls_last(), Deal.id.asc()).limit(limit + 1))
    rows = list((await session.scalars(query)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(await deal_dicts(session, rows), encode_stage_cursor(rows[-1]) if more and rows else None)


async def stage_totals(session: AsyncSession, actor: User, pipeline_id: int, *,
                       responsible_id: int | None = None,
                       tag: str | None = None) -> dict[int, dict[str, Any]]:
    """``{stage_id: {"count", "amount"}}`` for every stage of the pipeline, summed in SQL."""
    if pipeline_id is None:
        raise ValidationError({"pipeline_id": "is required"})
    where = await deal_filters(session, actor, pipeline_id=pipeline_id, responsible_id=responsible_id,
                               tag=tag)
    if await session.get(Pipeline, pipeline_id) is None:
        raise NotFound("pipeline not found")
    rows = await session.execute(
        select(Deal.stage_id, func.count(Deal.id), func.coalesce(func.sum(Deal.amount_minor), 0))
        .where(*where).group_by(Deal.stage_id)
    )
    sums = {stage_id: (int(count), int(total)) for stage_id, count, total in rows}
    stage_ids = (await session.scalars(
        select(Stage.id).where(Stage.pipeline_id == pipeline_id).order_by(Stage.position, Stage.id))).all()
    return {sid: {"count": sums.get(sid, (0, 0))[0], "amount": roubles(sums.get(sid, (0, 0))[1])}
            for sid in stage_ids}
