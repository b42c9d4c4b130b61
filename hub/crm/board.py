"""What the deal pages (the kanban ``/deals`` and the table ``/deals/list``) need beyond ``deals``:
the filter choices, one deal checked against the board's filters, and the deal list in a chosen
order with a keyset cursor. Read-only: no flush, no events.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import deals
from hub.crm.errors import ValidationError
from hub.crm.models import Deal, Tag, User, deal_tags
from hub.crm.paging import Page, clamp_limit

# order name → (column, descending); ties are broken by the id in the same direction.
ORDERS: dict[str, tuple[Any, bool]] = {
    "created": (Deal.created_at, True),
    "amount": (Deal.amount_minor, True),
    "next": (Deal.next_interaction_at, False),
    "title": (Deal.title, False),
}
DEFAULT_ORDER = "created"
MAX_CHOICES = 500


async def people(session: AsyncSession) -> list[dict[str, Any]]:
    """Active users (id, name), by name: who may be responsible for a deal."""
    rows = await session.execute(select(User.id, User.name).where(User.active).order_by(User.name, User.id)
                                 .limit(MAX_CHOICES))
    return [{"id": i, "name": name} for i, name in rows]


async def deal_tag_names(session: AsyncSession) -> list[str]:
    """Tags that some deal carries, alphabetically."""
    rows = await session.scalars(
        select(Tag.name).where(Tag.id.in_(select(deal_tags.c.tag_id))).order_by(Tag.name).limit(MAX_CHOICES))
    return list(rows)


async def board_deal(session: AsyncSession, actor: User, deal_id: int, *, pipeline_id: int,
                     responsible_id: int | None = None, tag: str | None = None) -> dict[str, Any] | None:
    """The deal as a kanban card, or None when the actor may not see it or the board's filters
    (pipeline, responsible, tag) leave it out."""
    where = await deals.deal_filters(session, actor, pipeline_id=pipeline_id, responsible_id=responsible_id,
                                 tag=tag)
    deal = await session.scalar(deals.deal_query().where(Deal.id == deal_id, *where))
    return None if deal is None else await deals.deal_dict(session, deal)


def _encode(order: str, value: Any, last_id: int) -> str:
    if isinstance(value, datetime):
        value = {"t": value.isoformat()}
    raw = json.dumps([order, value, last_id], ensure_ascii=False, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str, order: str) -> tuple[Any, int]:
    try:
        name, value, last_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if name != order or isinstance(last_id, bool) or not isinstance(last_id, int):
            raise ValueError
        if isinstance(value, dict):
            value = datetime.fromisoformat(value["t"])
            if value.tzinfo is None or order not in ("created", "next"):
                raise ValueError
        elif order in ("created", "next") and value is not None:
            raise ValueError
        elif order == "amount" and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError
        elif order == "title" and not isinstance(value, str):
            raise ValueError
        return value, last_id
    except (ValueError, TypeError, KeyError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError({"cursor": "is not a cursor this server issued"}) from exc


def _after(order: str, value: Any, last_id: int) -> Any:
    column, desc = ORDERS[order]
    if order == "next":  # nearest first, deals without a plan last
        if value is None:
            return and_(column.is_(None), Deal.id > last_id)
        return or_(column > value, and_(column == value, Deal.id > last_id), column.is_(None))
    if desc:
        return or_(column < value, and_(column == value, Deal.id < last_id))
    return or_(column > value, and_(column == value, Deal.id > last_id))


async def list_deals_ordered(session: AsyncSession, actor: User, *, order: str = DEFAULT_ORDER,
                             pipeline_id: int | None = None, stage_id: int | None = None,
                             responsible_id: int | None = None, tag: str | None = None,
                             q: str | None = None, without_tasks: bool = False,
                             cursor: str | None = None, limit: int | None = None,
                             region: str = "RU") -> Page:
    """``deals.list_deals`` with a sort order: ``created`` (newest first), ``amount`` (largest first),
    ``next`` (nearest planned interaction first, none last) or ``title`` (A to Z)."""
    if order not in ORDERS:
        raise ValidationError({"order": f"must be one of {', '.join(ORDERS)}"})
    limit = clamp_limit(limit)
    where = await deals.deal_filters(session, actor, pipeline_id=pipeline_id, stage_id=stage_id,
                                 responsible_id=responsible_id, tag=tag, q=q, without_tasks=without_tasks,
                                 region=region)
    if cursor:
        where.append(_after(order, *_decode(cursor, order)))
    column, desc = ORDERS[order]
    if order == "next":
        sort = (column.asc().nulls_last(), Deal.id.asc())
    elif desc:
        sort = (column.desc(), Deal.id.desc())
    else:
        sort = (column.asc(), Deal.id.asc())
    query = deals.deal_query().where(*where).order_by(*sort).limit(limit + 1)
    rows = list((await session.scalars(query)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        next_cursor = _encode(order, getattr(last, column.key), last.id)
    return Page(await deals.deal_dicts(session, rows), next_cursor)


async def first_cards(session: AsyncSession, actor: User, stage_ids: list[int], *, limit: int,
                      responsible_id: int | None = None, tag: str | None = None) -> dict[int, Page]:
    """The first ``limit`` cards of every column at once — what ``deals.list_stage_deals`` answers
    for each stage (same order, same cursors) — in one query for the ids and one for the deals."""
    limit = clamp_limit(limit)
    if not stage_ids:
        return {}
    where = await deals.deal_filters(session, actor, responsible_id=responsible_id, tag=tag)
    # Per stage: the planned ones in index order (stage_id, next_interaction_at), then the unplanned
    # ones; each part limited, so no column sorts more than it shows.
    parts = []
    for sid in stage_ids:
        parts.append(select(Deal.id, Deal.stage_id, Deal.next_interaction_at)
                     .where(Deal.stage_id == sid, Deal.next_interaction_at.is_not(None), *where)
                     .order_by(Deal.next_interaction_at.asc(), Deal.id.asc()).limit(limit + 1).subquery())
        parts.append(select(Deal.id, Deal.stage_id, Deal.next_interaction_at)
                     .where(Deal.stage_id == sid, Deal.next_interaction_at.is_(None), *where)
                     .order_by(Deal.id.asc()).limit(limit + 1).subquery())
    keys: Sequence[tuple[int, int, datetime | None]] = (await session.execute(union_all(
        *(select(p.c.id, p.c.stage_id, p.c.next_interaction_at) for p in parts)))).all()
    far = datetime.max.replace(tzinfo=UTC)
    wanted: dict[int, list[int]] = {sid: [] for sid in stage_ids}
    for deal_id, stage_id, _ in sorted(keys, key=lambda k: (k[2] is None, k[2] or far, k[0])):
        if len(wanted[stage_id]) <= limit:
            wanted[stage_id].append(deal_id)
    ids = [i for column in wanted.values() for i in column]
    found = (await session.scalars(deals.deal_query().where(Deal.id.in_(ids)))).all() if ids else []
    loaded = {d.id: d for d in found}
    by_stage = {sid: [loaded[i] for i in wanted[sid] if i in loaded] for sid in stage_ids}
    shown = [d for sid in stage_ids for d in by_stage[sid][:limit]]
    dicts = {d["id"]: d for d in await deals.deal_dicts(session, shown)}
    result = {}
    for sid in stage_ids:
        column = by_stage[sid]
        more = len(column) > limit
        column = column[:limit]
        result[sid] = Page([dicts[d.id] for d in column],
                           deals.encode_stage_cursor(column[-1]) if more and column else None)
    return result
