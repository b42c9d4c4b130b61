"""Deals and what hangs on them: stages and pipelines, tasks, timeline entries, notifications."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from hub.crm.resources.base import (
    Custom,
    Direction,
    Free,
    Id,
    Ref,
    Resource,
    StageKind,
    Time,
    TimelineKind,
)


class DealStage(Resource, kw_only=True):
    id: Id
    name: str
    kind: StageKind
    color: str


class Deal(Resource, kw_only=True):
    id: Id
    title: str
    client_id: Id | None
    client: Ref | None
    lead_id: Id | None
    lead: Ref | None
    contact_id: Id | None
    contact: Ref | None
    pipeline_id: Id
    stage_id: Id
    stage: DealStage
    amount: Annotated[float, Meta(description="roubles")]
    currency: str
    responsible_id: Id | None
    responsible: Ref | None
    tags: list[str]
    source: str
    utm_source: str
    utm_medium: str
    utm_campaign: str
    utm_content: str
    utm_term: str
    next_interaction_at: Time | None
    next_interaction_note: str
    loss_reason_id: Id | None
    loss_reason: Ref | None
    custom: Custom
    created_at: Time | None
    updated_at: Time | None
    stage_changed_at: Time | None
    last_activity_at: Time | None
    closed_at: Time | None
    open: Annotated[bool, Meta(description="the stage is neither won nor lost")]
    overdue: Annotated[bool, Meta(description="open, and the next interaction is past")]


class Task(Resource, kw_only=True):
    id: Id
    subject: str
    description: str
    kind: str
    start_at: Time | None
    due_at: Time | None
    percent: Annotated[int, Meta(ge=0, le=100)]
    client_id: Id | None
    client: Ref | None
    deal_id: Id | None
    deal: Ref | None
    lead_id: Id | None
    lead: Ref | None
    assignee_id: Id | None
    assignee: Ref | None
    author_id: Id | None
    author: Ref | None
    completed_at: Time | None
    done: bool
    overdue: bool
    created_at: Time | None
    updated_at: Time | None


class Stage(Resource, kw_only=True):
    id: Id
    name: str
    position: int
    color: str
    kind: StageKind


class Pipeline(Resource, kw_only=True):
    id: Id
    name: str
    position: int
    is_default: bool
    created_at: Time | None
    stages: list[Stage]


class LossReason(Resource, kw_only=True):
    id: Id
    name: str
    active: bool


class Attachment(Resource, kw_only=True):
    id: Id
    filename: str
    content_type: str
    size: int


class TimelineEntry(Resource, kw_only=True):
    id: Id
    kind: TimelineKind
    direction: Direction | None
    occurred_at: Time | None
    author: Ref | None
    text: str
    payload: Annotated[Free, Meta(description="by kind: the call, the message, the stage change ...")]
    pinned: bool
    deal_id: Id | None
    client_id: Id | None
    lead_id: Id | None
    attachments: list[Attachment]
    created_at: Time | None


class Notification(Resource, kw_only=True):
    id: Id
    user_id: Id
    kind: str
    title: str
    text: str
    link: str
    payload: Annotated[Free, Meta(description="by kind: the task, the call ...")]
    read: bool
    read_at: Time | None
    created_at: Time | None
