"""Calls: the call log entry, and the screen-pop with the matches of who is calling."""

from __future__ import annotations

from typing import Annotated, get_args

from msgspec import UNSET, Meta, UnsetType

from hub.crm.ports import UnknownCaller
from hub.crm.resources.base import (
    CallDirection,
    CallStatus,
    Direction,
    Id,
    Ref,
    Resource,
    Time,
    TimelineKind,
    one_of,
)


class CallAgent(Resource, kw_only=True):
    id: Id | None
    name: str | None
    extension: str | None


class Recording(Resource, kw_only=True):
    url: str
    agent_extension: str | None


class Call(Resource, kw_only=True):
    id: Id
    call_key: str
    direction: CallDirection
    status: CallStatus
    external_number: str | None
    did: str | None
    agent: CallAgent | None
    started_at: Time | None
    answered_at: Time | None
    ended_at: Time | None
    wait_seconds: int
    talk_seconds: int
    hangup_cause: int | None
    recording_url: str | None
    recordings: Annotated[list[Recording], Meta(
        description="every recording in the order they were made (one per agent leg; recording_url is "
                    "the first)")]
    client_id: Id | None
    client: Ref | None
    contact_id: Id | None
    lead_id: Id | None
    lead: Ref | None
    deal_id: Id | None
    timeline_entry_id: Id | None
    callback_task_id: Id | None
    created_at: Time | None


class OpenDeal(Resource, kw_only=True):
    id: Id
    title: str
    stage: str | None
    amount: Annotated[float, Meta(description="roubles")]


class Match(Resource, kw_only=True):
    """Who owns a phone number, an e-mail or a Telegram chat. A person the caller may not open is only
    ``type`` and ``access`` (false): no id, name or deals."""

    type: Annotated[str, one_of(("client", "contact", "lead", "user"))]
    id: Id | UnsetType = UNSET
    name: str | UnsetType | None = UNSET
    client_id: Id | UnsetType | None = UNSET
    open_deals: list[OpenDeal] | UnsetType = UNSET
    access: Annotated[bool | UnsetType, Meta(
        description="false: a person the caller may not open (then only `type` and `access`)")] = UNSET


class Interaction(Resource, kw_only=True):
    id: Id
    kind: TimelineKind
    direction: Direction | None
    occurred_at: Time | None
    text: Annotated[str, Meta(description="its first 200 characters")]
    status: Annotated[str | None, Meta(description="a call's status")]
    deal_id: Id | None


class OpenTask(Resource, kw_only=True):
    id: Id
    subject: str
    kind: str
    due_at: Time | None
    overdue: bool
    assignee_id: Id | None


class PopMatch(Match, kw_only=True):
    """A match as the rung agent's popup shows it: with the main manager, the company of a contact
    person, the last interactions and the open tasks (the first matches only)."""

    company: Ref | UnsetType = UNSET
    manager: Ref | UnsetType | None = UNSET
    last_interactions: list[Interaction] | UnsetType = UNSET
    open_tasks: list[OpenTask] | UnsetType = UNSET


class PopUp(Resource, kw_only=True):
    """The screen-pop (``call.ringing`` on the event stream): who is calling whom."""

    call_id: Annotated[Id | None, Meta(description="null while the call's row is not written yet")]
    call_key: str
    direction: CallDirection
    number: str | None
    did: str | None
    extension: str | None
    started_at: Time | None
    matches: list[PopMatch]
    unknown: bool
    ignored: bool
    caller_name: str | None
    hidden_number: bool
    lead_created: Id | None
    unknown_caller: Annotated[str, one_of(get_args(UnknownCaller))]
