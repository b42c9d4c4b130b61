"""What the deal card shows, read in one go: the deal, its pipeline's stages, the loss reasons, the
deal's custom fields, the client's channels (for the composer), and the pinned timeline entries.

Read-only; access as ``deals.get_deal`` and ``timeline.list_timeline``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from hub.crm import access, contact_points, deals, pipelines, timeline
from hub.crm.models import ContactPerson, CustomField, Deal, TimelineEntry, User

MAX_PINNED = 50


async def deal_card(session: AsyncSession, actor: User, deal_id: int) -> dict[str, Any]:
    """``{"deal", "pipeline": {id, name, stages}, "loss_reasons", "custom_fields", "channels",
    "can_edit"}``; NotFound when the actor may not see the deal."""
    deal = await deals.get_deal(session, actor, deal_id)
    pipeline = await pipelines.get_pipeline(session, actor, deal["pipeline_id"])
    reasons = (await pipelines.list_loss_reasons(session)).items
    fields = (await session.scalars(
        select(CustomField).where(CustomField.entity == "deal").order_by(CustomField.position, CustomField.id)
    )).all()
    if deal["client_id"] is not None:
        channels = (await contact_points.of(session, "client_id", [deal["client_id"]]))[deal["client_id"]]
        if deal["contact_id"] is not None:
            contact_id = deal["contact_id"]
            person = (await contact_points.of(session, "contact_id", [contact_id]))[contact_id]
            for kind, values in person.items():
                channels[kind] = list(dict.fromkeys([*values, *channels[kind]]))
    else:
        channels = (await contact_points.of(session, "lead_id", [deal["lead_id"]]))[deal["lead_id"]]
    return {
        "deal": deal,
        "pipeline": pipeline,
        "loss_reasons": reasons,
        "custom_fields": [{"key": f.key, "label": f.label, "type": f.type, "choices": list(f.choices or [])}
                          for f in fields],
        "channels": channels,
        "can_edit": access.is_staff(actor) or deal["responsible_id"] == actor.id,
    }


async def responsible_choices(session: AsyncSession) -> list[dict[str, Any]]:
    """Active users, by name: who a deal may be handed to."""
    rows = await session.execute(select(User.id, User.name).where(User.active).order_by(User.name, User.id))
    return [{"id": uid, "name": name} for uid, name in rows]


async def contact_choices(session: AsyncSession, client_id: int | None) -> list[dict[str, Any]]:
    """The client's contact persons, by name."""
    if client_id is None:
        return []
    rows = await session.execute(select(ContactPerson.id, ContactPerson.name)
                                 .where(ContactPerson.client_id == client_id)
                                 .order_by(ContactPerson.name, ContactPerson.id))
    return [{"id": cid, "name": name} for cid, name in rows]


async def pinned_entries(session: AsyncSession, actor: User, target: str, target_id: int, *,
                         kinds: list[str] | None = None) -> list[dict[str, Any]]:
    """The pinned entries of a deal's, client's or lead's timeline (newest first, at most 50),
    optionally of the given kinds; the same access rule as ``timeline.list_timeline``."""
    kinds = timeline._parse_kinds(kinds)
    obj = await timeline._target(session, actor, target, target_id)  # NotFound as for the list
    column = {"deal": TimelineEntry.deal_id, "client": TimelineEntry.client_id,
              "lead": TimelineEntry.lead_id}[target]
    query = (select(TimelineEntry).where(column == obj.id, TimelineEntry.pinned.is_(True))
             .options(selectinload(TimelineEntry.attachments)))
    if kinds:
        query = query.where(TimelineEntry.kind.in_(kinds))
    if target != "deal" and not await access.sees_all(session, actor):
        query = query.where(or_(TimelineEntry.deal_id.is_(None), TimelineEntry.deal_id.in_(
            select(Deal.id).where(await access.deals_filter(session, actor)))))
    rows = list((await session.scalars(query.order_by(TimelineEntry.id.desc()).limit(MAX_PINNED))).all())
    return await timeline.entry_dicts(session, rows)
