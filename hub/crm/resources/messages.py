"""Messages and conversations, as the inbox and the chat panel show them."""

from __future__ import annotations

from typing import Annotated

from msgspec import UNSET, Meta, UnsetType

from hub.crm.resources.base import (
    Channel,
    Direction,
    Id,
    MessageStatus,
    Ref,
    Resource,
    Time,
    one_of,
)
from hub.crm.resources.deals import TimelineEntry


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
