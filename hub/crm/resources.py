"""The resources the API returns, each declared once as a typed structure.

A resource's fields, their types and their meaning are written here and nowhere else: the core builds
each resource through its class (so a field cannot appear without its type), one serialiser turns it into
the JSON-ready value that the API answers, the events carry and the pages render
(``hub.serialise.plain``), and the OpenAPI
document's schemas are generated from these classes (``hub.web.api.schemas``). Why msgspec: see
docs/decisions.md, «Typed resources: msgspec structures».
"""

from __future__ import annotations

from typing import Annotated, Any, get_args

from msgspec import UNSET, Meta, Struct, UnsetType

from hub.crm.models import (
    CALL_DIRECTIONS,
    CALL_STATUSES,
    CHANNELS,
    CLIENT_KINDS,
    DIRECTIONS,
    LANGUAGES,
    MESSAGE_STATUSES,
    ROLES,
    STAGE_KINDS,
    TIMELINE_KINDS,
)
from hub.crm.ports import UnknownCaller

Id = Annotated[int, Meta(ge=1)]
Time = Annotated[str, Meta(extra_json_schema={"format": "date-time"})]
# an object whose keys are data (custom field keys, an entry's payload): any property
Free = Annotated[dict[str, Any], Meta(extra_json_schema={"additionalProperties": True})]


def one_of(values: tuple[str, ...]) -> Meta:
    """A column's value from a fixed set: a string to the type checker (the models hold str), an enum
    in the published schema."""
    return Meta(extra_json_schema={"enum": list(values)})


Direction = Annotated[str, one_of(DIRECTIONS)]
StageKind = Annotated[str, one_of(STAGE_KINDS)]
Role = Annotated[str, one_of(ROLES)]
ClientKind = Annotated[str, one_of(CLIENT_KINDS)]
TimelineKind = Annotated[str, one_of(TIMELINE_KINDS)]
CallDirection = Annotated[str, one_of(CALL_DIRECTIONS)]
CallStatus = Annotated[str, one_of(CALL_STATUSES)]
Language = Annotated[str, one_of(LANGUAGES)]
Channel = Annotated[str, one_of(CHANNELS)]
MessageStatus = Annotated[str, one_of(MESSAGE_STATUSES)]

Custom = Annotated[Free, Meta(description="values by custom field key (GET /api/v1/custom-fields)")]


class Resource(Struct, kw_only=True, omit_defaults=True):
    """Fields with a default are omitted while they hold UNSET (a field only some resources carry)."""


class Ref(Resource, kw_only=True):
    """Another resource, by id and name."""

    id: Id
    name: str | None


class Bounce(Resource, kw_only=True):
    at: Time | None
    reason: str


class ContactPoints(Resource, kw_only=True):
    """A person's phones, e-mails and Telegram chats; also the e-mails whose letters came back."""

    phones: list[str]
    emails: list[str]
    telegram: list[str]
    bounced_emails: Annotated[dict[str, Bounce], Meta(
        description="the e-mails whose letters came back: {address: {at, reason}}")]


class Client(ContactPoints, kw_only=True):
    id: Id
    kind: ClientKind
    name: str
    full_name: str
    inn: str | None
    kpp: str | None
    okpo: str | None
    manager_id: Id | None
    manager: Ref | None
    relationship_type: str
    region: str
    industry: str
    comment: str
    tags: list[str]
    custom: Custom
    created_at: Time | None
    updated_at: Time | None


class Contact(ContactPoints, kw_only=True):
    id: Id
    client_id: Id
    name: str
    position: str
    comment: str
    created_at: Time | None


class Lead(ContactPoints, kw_only=True):
    # None in a lead the screen-pop shows before its unit of work has given it an id
    id: Id | None
    name: str
    source: str
    manager_id: Id | None
    manager: Ref | None
    comment: str
    utm: Annotated[dict[str, str], Meta(description="UTM tags by name (utm_source ...), at most 20")]
    unsorted: bool
    converted_client_id: Id | None
    converted_at: Time | None
    created_at: Time | None


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


class User(ContactPoints, kw_only=True):
    id: Id
    login: str
    name: str
    role: Role
    language: Language
    active: bool
    extensions: list[str]
    created_at: Time | None


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


class ConversationRow(Resource, kw_only=True):
    """A conversation's own columns, as a message carries it."""

    id: Id
    channel: Channel
    address: str
    title: str
    username: str | None
    client_id: Id | None
    contact_id: Id | None
    lead_id: Id | None
    assignee_id: Id | None
    unread: int
    state: str
    last_message_at: Time | None
    last_text: str


class Message(Resource, kw_only=True):
    id: Id
    channel: Channel
    direction: Direction
    status: MessageStatus
    conversation_id: Id
    entry_id: Id | None
    provider_id: str | None
    reply_to_id: Id | None
    author_id: Id | None
    text: str
    subject: str
    attempts: int
    error_code: str | None
    error: str | None
    created_at: Time | None
    sent_at: Time | None
    next_attempt_at: Time | None
    conversation: ConversationRow | UnsetType = UNSET


class ChatMessage(Message, kw_only=True):
    """A message in a conversation, with its timeline entry (attachments) and author."""

    entry: TimelineEntry | None
    author: Ref | None


class QueuedMessage(Message, kw_only=True):
    """What sending answers: the first message, and every part a long text was cut into."""

    messages: list[Message]


class Person(Resource, kw_only=True):
    """Whom a conversation belongs to."""

    type: Annotated[str, one_of(("client", "lead"))]
    id: Id
    name: str
    url: Annotated[str, Meta(description="the person's card")]
    contact: Annotated[Ref | UnsetType, Meta(description="the client's contact person who writes")] = UNSET


class Conversation(ConversationRow, kw_only=True):
    """A conversation in the inbox: with its person, assignee, deal and display name."""

    person: Person | None
    assignee: Ref | None
    deal_id: Id | None
    name: str
    subject: Annotated[str | UnsetType, Meta(description="e-mail: the subject of the latest letter")] = UNSET


class ReplyTo(Resource, kw_only=True):
    entry_id: Id
    subject: str


class ConversationWithMessages(Conversation, kw_only=True):
    messages: list[ChatMessage]
    messages_cursor: str | None
    reply_to: Annotated[ReplyTo | UnsetType | None, Meta(
        description="e-mail: the latest letter on a timeline, what a reply answers by default")] = UNSET


# The classes the OpenAPI document names as components (each by its class name).
COMPONENTS: tuple[type[Resource], ...] = (
    Client, Contact, Lead, Deal, Task, User, Pipeline, LossReason, TimelineEntry, Notification, Call, Match,
    PopUp, Message, ChatMessage, QueuedMessage, Conversation, ConversationWithMessages)
