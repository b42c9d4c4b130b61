"""Pipelines (воронки) with their ordered stages, and the loss reasons of lost deals."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from hub.crm import access, resources
from hub.crm.errors import Conflict, NotFound, ValidationError
from hub.crm.models import STAGE_KINDS, Deal, LossReason, Pipeline, Stage, User
from hub.crm.paging import Page
from hub.crm.validate import Fields, clean_text, iso
from hub.serialise import plain

COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_COLOR = "#9e9e9e"
MAX_STAGES = 50


def _stage(stage: Stage) -> resources.Stage:
    return resources.Stage(id=stage.id, name=stage.name, position=stage.position, color=stage.color,
                           kind=stage.kind)


def stage_dict(stage: Stage) -> dict[str, Any]:
    return plain(_stage(stage))


def pipeline_dict(pipeline: Pipeline) -> dict[str, Any]:
    stages = sorted(pipeline.stages, key=lambda st: (st.position, st.id))
    return plain(resources.Pipeline(
        id=pipeline.id, name=pipeline.name, position=pipeline.position, is_default=pipeline.is_default,
        created_at=iso(pipeline.created_at), stages=[_stage(st) for st in stages]))


def loss_reason_dict(reason: LossReason) -> dict[str, Any]:
    return plain(resources.LossReason(id=reason.id, name=reason.name, active=reason.active))


async def _load(session: AsyncSession, pipeline_id: Any) -> Pipeline:
    if isinstance(pipeline_id, bool) or not isinstance(pipeline_id, int) or not 0 < pipeline_id <= 2**62:
        raise NotFound("pipeline not found")
    pipeline = await session.scalar(
        select(Pipeline).where(Pipeline.id == pipeline_id)
        .options(selectinload(Pipeline.stages)).execution_options(populate_existing=True)
    )
    if pipeline is None:
        raise NotFound("pipeline not found")
    return pipeline


async def default_pipeline(session: AsyncSession) -> Pipeline:
    """The default pipeline (with its stages loaded); the first one if none is marked default."""
    pipeline = await session.scalar(
        select(Pipeline).options(selectinload(Pipeline.stages))
        .order_by(Pipeline.is_default.desc(), Pipeline.position, Pipeline.id).limit(1)
    )
    if pipeline is None:
        raise NotFound("there is no pipeline")
    return pipeline


async def list_pipelines(session: AsyncSession, actor: User) -> Page:
    """Every pipeline (there are few): no further pages."""
    rows = (await session.scalars(
        select(Pipeline).options(selectinload(Pipeline.stages)).order_by(Pipeline.position, Pipeline.id)
    )).all()
    return Page([pipeline_dict(p) for p in rows], None)


async def get_pipeline(session: AsyncSession, actor: User, pipeline_id: int) -> dict[str, Any]:
    return pipeline_dict(await _load(session, pipeline_id))


def _stage_specs(v: Fields, existing: dict[int, Stage] | None) -> list[dict[str, Any]] | None:
    """The ``stages`` list of a create/update body, validated; None when absent or invalid."""
    raw = v.data.get("stages")
    if raw is None:
        if not v.partial:
            v.fail("stages", "is required")
        return None
    if not isinstance(raw, list) or not raw:
        v.fail("stages", "must be a non-empty list")
        return None
    if len(raw) > MAX_STAGES:
        v.fail("stages", f"must have at most {MAX_STAGES} stages")
        return None
    specs: list[dict[str, Any]] = []
    seen_ids: set[int] = set()
    for i, item in enumerate(raw):
        prefix = f"stages[{i}]"
        if not isinstance(item, dict):
            v.fail(prefix, "must be an object")
            continue
        sv = Fields(item)
        stage_id = sv.id("id") if "id" in item else None
        current = None
        if stage_id is not None:
            current = (existing or {}).get(stage_id)
            if current is None or stage_id in seen_ids:
                sv.fail("id", "is not a stage of this pipeline")
            seen_ids.add(stage_id)
        name = sv.text("name", required=current is None, max_len=200,
                       default=current.name if current else "")
        if current is not None and "name" in item and not name:
            sv.fail("name", "must not be empty")
        color = sv.text("color", max_len=16, default=current.color if current else DEFAULT_COLOR)
        if isinstance(color, str) and color and not COLOR.match(color):
            sv.fail("color", "must be a colour like #1e88e5")
        kind = sv.choice("kind", STAGE_KINDS, default=current.kind if current else "active")
        for field, reason in sv.errors.items():
            v.fail(f"{prefix}.{field}", reason)
        specs.append({"id": stage_id, "name": name, "color": (color or DEFAULT_COLOR).lower(), "kind": kind})
    if not v.errors and not any(s["kind"] == "active" for s in specs):
        v.fail("stages", "must have at least one active stage")
    return specs


async def create_pipeline(session: AsyncSession, actor: User, data: Any) -> dict[str, Any]:
    access.require_admin(actor)
    v = Fields(data)
    name = v.text("name", required=True, max_len=200)
    make_default = v.boolean("is_default", default=False)
    position = v.integer("position", minimum=0, maximum=10_000)
    specs = _stage_specs(v, None)
    v.check()
    assert specs is not None
    if position is None:
        last = select(func.coalesce(func.max(Pipeline.position), -1))
        position = (await session.execute(last)).scalar_one() + 1
    if make_default:
        await session.execute(update(Pipeline).values(is_default=False))
    pipeline = Pipeline(name=name, position=position, is_default=make_default, stages=[
        Stage(name=s["name"], color=s["color"], kind=s["kind"], position=i) for i, s in enumerate(specs)
    ])
    session.add(pipeline)
    await session.flush()
    return pipeline_dict(await _load(session, pipeline.id))


async def update_pipeline(session: AsyncSession, actor: User, pipeline_id: int, data: Any) -> dict[str, Any]:
    """PATCH: name, position, is_default (only true) and the full ``stages`` list — each item with the
    ``id`` of a kept stage or without one for a new stage; stages left out are removed (409 when
    deals are in them); the list order is the new order."""
    access.require_admin(actor)
    pipeline = await _load(session, pipeline_id)
    v = Fields(data, partial=True)
    name = v.text("name", required=True, max_len=200, default=None)
    position = v.integer("position", minimum=0, maximum=10_000)
    make_default = v.boolean("is_default")
    if make_default is False and pipeline.is_default:
        v.fail("is_default", "make another pipeline the default instead")
    specs = _stage_specs(v, {st.id: st for st in pipeline.stages})
    v.check()
    if name is not None:
        pipeline.name = name
    if position is not None:
        pipeline.position = position
    if make_default and not pipeline.is_default:
        await session.execute(update(Pipeline).where(Pipeline.id != pipeline.id).values(is_default=False))
        pipeline.is_default = True
    if specs is not None:
        kept = {s["id"] for s in specs if s["id"] is not None}
        removed = [st for st in pipeline.stages if st.id not in kept]
        if removed:
            used = (await session.scalars(
                select(Stage.name).join(Deal, Deal.stage_id == Stage.id)
                .where(Stage.id.in_([st.id for st in removed])).distinct()
            )).all()
            if used:
                raise Conflict(f"deals are still in the stages: {', '.join(sorted(used))}",
                               {"stages": "a removed stage still has deals"})
        by_id = {st.id: st for st in pipeline.stages}
        new_stages = []
        for i, spec in enumerate(specs):
            stage = by_id[spec["id"]] if spec["id"] is not None else Stage()
            stage.name, stage.color, stage.kind, stage.position = spec["name"], spec["color"], spec["kind"], i
            new_stages.append(stage)
        pipeline.stages = new_stages  # delete-orphan removes the others
    await session.flush()
    return pipeline_dict(await _load(session, pipeline.id))


async def delete_pipeline(session: AsyncSession, actor: User, pipeline_id: int) -> None:
    access.require_admin(actor)
    pipeline = await _load(session, pipeline_id)
    if pipeline.is_default:
        raise Conflict("the default pipeline cannot be deleted")
    if await session.scalar(select(Deal.id).where(Deal.pipeline_id == pipeline.id).limit(1)) is not None:
        raise Conflict("deals still use this pipeline")
    await session.delete(pipeline)
    await session.flush()


async def list_loss_reasons(session: AsyncSession, *, include_inactive: bool = False) -> Page:
    """The loss reasons offered when a deal is lost (free-text reasons are stored inactive)."""
    query = select(LossReason).order_by(LossReason.id)
    if not include_inactive:
        query = query.where(LossReason.active)
    return Page([loss_reason_dict(r) for r in (await session.scalars(query)).all()], None)


async def create_loss_reason(session: AsyncSession, actor: User, data: Any) -> dict[str, Any]:
    access.require_admin(actor)
    v = Fields(data)
    name = v.text("name", required=True, max_len=200)
    v.check()
    existing = await session.scalar(select(LossReason).where(LossReason.name == name))
    if existing is not None:
        if existing.active:
            raise Conflict("this loss reason exists already", {"name": "exists already"})
        existing.active = True  # a free-text reason becomes an offered one
        await session.flush()
        return loss_reason_dict(existing)
    reason = LossReason(name=name, active=True)
    try:
        async with session.begin_nested():
            session.add(reason)
            await session.flush()
    except IntegrityError as exc:
        raise Conflict("this loss reason exists already", {"name": "exists already"}) from exc
    return loss_reason_dict(reason)


async def find_or_make_loss_reason(session: AsyncSession, value: Any) -> LossReason:
    """``value`` is a loss reason id or a free text (kept as an inactive reason, reused by name)."""
    if isinstance(value, int) and not isinstance(value, bool):
        reason = await session.get(LossReason, value)
        if reason is None:
            raise ValidationError({"loss_reason": "no such loss reason"})
        return reason
    if not isinstance(value, str):
        raise ValidationError({"loss_reason": "must be a loss reason id or a text"})
    text = value.strip()
    problem = clean_text(text) or ("must be at most 200 characters" if len(text) > 200 else None)
    if problem or not text:
        raise ValidationError({"loss_reason": problem or "must not be empty"})
    reason = await session.scalar(select(LossReason).where(LossReason.name == text))
    if reason is None:
        reason = await session.scalar(
            select(LossReason).where(func.lower(LossReason.name) == text.lower()).limit(1))
    if reason is None:
        candidate = LossReason(name=text, active=False)
        try:
            async with session.begin_nested():
                session.add(candidate)
                await session.flush()
            reason = candidate
        except IntegrityError:  # added by a concurrent transaction just now
            reason = await session.scalar(select(LossReason).where(LossReason.name == text))
            if reason is None:
                raise
    return reason
