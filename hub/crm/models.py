"""The CRM's tables. Times are stored as naive UTC and read back as aware UTC (see ``UTCDateTime``).

Money is stored in kopecks (``amount_minor``) so that sums are exact on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

# the base, the column types and the inbound journal's table are the infrastructure's (hub.orm, hub.inbound)
from hub.crm.names import name_key
from hub.inbound.journal import InboundDelivery as InboundDelivery
from hub.orm import NAMING as NAMING
from hub.orm import Base as Base
from hub.orm import JSONDocument as JSONDocument
from hub.orm import UTCDateTime as UTCDateTime
from hub.orm import utcnow as utcnow

ROLES = ("admin", "manager", "agent")
CLIENT_KINDS = ("company", "person")
RELATIONSHIPS = ("buyer", "supplier", "partner", "competitor", "other")
STAGE_KINDS = ("active", "won", "lost")
TIMELINE_KINDS = ("call", "sms", "whatsapp", "telegram", "email", "note", "stage_change", "task", "system")
DIRECTIONS = ("in", "out")
CONTACT_KINDS = ("phone", "email", "telegram_id", "telegram_username")
CUSTOM_FIELD_TYPES = ("text", "number", "date", "choice")
LANGUAGES = ("ru", "en")
TASK_KINDS = ("task", "callback")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16), default="agent")
    language: Mapped[str] = mapped_column(String(8), default="ru")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    extensions: Mapped[list[UserExtension]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by="UserExtension.extension"
    )


class UserExtension(Base):
    """An internal phone number (Asterisk endpoint) that rings this user."""

    __tablename__ = "user_extensions"

    extension: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    user: Mapped[User] = relationship(back_populates="extensions")


class AuthToken(Base):
    """A bearer token or a browser session; only the SHA-256 of the secret is stored.

    ``id`` names it for listing and revoking; an API token has a ``name`` its owner chose and, like
    a session, an expiry (``[server] token_days``). ``last_used_at`` is refreshed at most every few
    minutes."""

    __tablename__ = "auth_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # api | session
    name: Mapped[str] = mapped_column(String(100), default="")
    csrf_token: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)


class Setting(Base):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    color: Mapped[str] = mapped_column(String(16), default="")


client_tags = Table(
    "client_tags",
    Base.metadata,
    Column("client_id", ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True),
)

deal_tags = Table(
    "deal_tags",
    Base.metadata,
    Column("deal_id", ForeignKey("deals.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class CustomField(Base):
    """An admin-defined field of clients or deals; values live in the owner's ``custom`` JSON."""

    __tablename__ = "custom_fields"
    __table_args__ = (UniqueConstraint("entity", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(16))  # client | deal
    key: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(16))
    choices: Mapped[list[Any]] = mapped_column(default=list)
    position: Mapped[int] = mapped_column(default=0)


class Client(Base):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="company")
    name: Mapped[str] = mapped_column(String(300), index=True)
    full_name: Mapped[str] = mapped_column(Text, default="")
    inn: Mapped[str | None] = mapped_column(String(12), index=True, default=None)
    kpp: Mapped[str | None] = mapped_column(String(9), default=None)
    okpo: Mapped[str | None] = mapped_column(String(10), default=None)
    manager_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None
    )
    relationship_type: Mapped[str] = mapped_column(String(16), default="buyer")
    region: Mapped[str] = mapped_column(String(200), default="")
    industry: Mapped[str] = mapped_column(String(200), default="")
    comment: Mapped[str] = mapped_column(Text, default="")
    custom: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    # the name as duplicates are compared (hub.crm.names), kept in step by ``_keep_name_key``
    # (nullable: added to a table with rows, without rebuilding it on SQLite; every write sets it)
    name_key: Mapped[str | None] = mapped_column(String(300), index=True, default=None)

    tags: Mapped[list[Tag]] = relationship(secondary=client_tags, order_by=Tag.name)
    manager: Mapped[User | None] = relationship()

    @validates("name")
    def _keep_name_key(self, _key: str, name: str) -> str:
        self.name_key = name_key(name or "")
        return name


class ContactPerson(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    position: Mapped[str] = mapped_column(String(200), default="")
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Lead(Base):
    __tablename__ = "leads"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(100), default="")
    manager_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None
    )
    comment: Mapped[str] = mapped_column(Text, default="")
    utm: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Inbound leads nobody has taken yet are "unsorted" (Не разобрано).
    unsorted: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    converted_client_id: Mapped[int | None] = mapped_column(
        ForeignKey("clients.id", ondelete="SET NULL"), default=None
    )
    converted_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Rejected from Unsorted (spam, a wrong number): out of the board, kept with the reason.
    rejected_at: Mapped[datetime | None] = mapped_column(default=None)
    rejected_reason: Mapped[str] = mapped_column(String(300), default="")


class ContactPoint(Base):
    """A phone, e-mail or Telegram account of exactly one owner: a client, contact person, lead or user.

    ``value`` is normalised (E.164, lower-cased e-mail, numeric Telegram id, @username without @, lower);
    ``tail`` holds the last ten digits of a phone for caller IDs that arrive without a country code.
    """

    __tablename__ = "contact_points"
    __table_args__ = (
        CheckConstraint(
            "(CASE WHEN client_id IS NULL THEN 0 ELSE 1 END"
            " + CASE WHEN contact_id IS NULL THEN 0 ELSE 1 END"
            " + CASE WHEN lead_id IS NULL THEN 0 ELSE 1 END"
            " + CASE WHEN user_id IS NULL THEN 0 ELSE 1 END) = 1",
            name="one_owner",
        ),
        Index("ix_contact_points_lookup", "kind", "value"),
        Index("ix_contact_points_tail", "tail"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(String(320))
    raw: Mapped[str] = mapped_column(String(320), default="")
    tail: Mapped[str | None] = mapped_column(String(10), default=None)
    label: Mapped[str] = mapped_column(String(64), default="")
    # e-mail: our letters to this address came back (the last bounce's time and the server's reason)
    bounced_at: Mapped[datetime | None] = mapped_column(default=None)
    bounce_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    client_id: Mapped[int | None] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True, default=None
    )
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True, default=None
    )
    lead_id: Mapped[int | None] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE"), index=True, default=None
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True, default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Pipeline(Base):
    __tablename__ = "pipelines"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(default=0)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    stages: Mapped[list[Stage]] = relationship(
        back_populates="pipeline", order_by="Stage.position", cascade="all, delete-orphan"
    )


class Stage(Base):
    __tablename__ = "stages"

    id: Mapped[int] = mapped_column(primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(default=0)
    color: Mapped[str] = mapped_column(String(16), default="#9e9e9e")
    kind: Mapped[str] = mapped_column(String(16), default="active")

    pipeline: Mapped[Pipeline] = relationship(back_populates="stages")


class LossReason(Base):
    __tablename__ = "loss_reasons"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Deal(Base):
    __tablename__ = "deals"
    __table_args__ = (
        Index("ix_deals_stage_next", "stage_id", "next_interaction_at"),
        Index("ix_deals_client_responsible", "client_id", "responsible_id"),  # access: a client with my deal
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    client_id: Mapped[int | None] = mapped_column(
        ForeignKey("clients.id", ondelete="SET NULL"), index=True, default=None
    )
    lead_id: Mapped[int | None] = mapped_column(
        ForeignKey("leads.id", ondelete="SET NULL"), index=True, default=None
    )
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), default=None
    )
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"), index=True)
    stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id"))
    amount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    responsible_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None
    )
    source: Mapped[str] = mapped_column(String(100), default="")
    utm_source: Mapped[str] = mapped_column(String(200), default="")
    utm_medium: Mapped[str] = mapped_column(String(200), default="")
    utm_campaign: Mapped[str] = mapped_column(String(200), default="")
    utm_content: Mapped[str] = mapped_column(String(200), default="")
    utm_term: Mapped[str] = mapped_column(String(200), default="")
    next_interaction_at: Mapped[datetime | None] = mapped_column(default=None)
    next_interaction_note: Mapped[str] = mapped_column(Text, default="")
    loss_reason_id: Mapped[int | None] = mapped_column(
        ForeignKey("loss_reasons.id", ondelete="SET NULL"), default=None
    )
    custom: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    stage_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)

    stage: Mapped[Stage] = relationship()
    tags: Mapped[list[Tag]] = relationship(secondary=deal_tags, order_by=Tag.name)


class TimelineEntry(Base):
    """One interaction or event. An entry on a deal also carries the deal's client or lead, so the
    person's timeline shows everything about them."""

    __tablename__ = "timeline_entries"
    __table_args__ = (
        Index("ix_timeline_deal", "deal_id", "id"),
        Index("ix_timeline_client", "client_id", "id"),
        Index("ix_timeline_lead", "lead_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    direction: Mapped[str | None] = mapped_column(String(4), default=None)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    text: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), default=None)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), default=None)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), default=None)
    # The channel's own key of the fact (AMI Linkedid, Telegram update, Message-ID...): a replay is a no-op.
    external_key: Mapped[str | None] = mapped_column(String(300), unique=True, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    attachments: Mapped[list[Attachment]] = relationship(
        cascade="all, delete-orphan", order_by="Attachment.id"
    )


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("timeline_entries.id", ondelete="CASCADE"), index=True, default=None
    )
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), default=None)
    filename: Mapped[str] = mapped_column(String(300))
    content_type: Mapped[str] = mapped_column(String(200), default="application/octet-stream")
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_assignee_due", "assignee_id", "completed_at", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    start_at: Mapped[datetime | None] = mapped_column(default=None)
    due_at: Mapped[datetime | None] = mapped_column(default=None)
    percent: Mapped[int] = mapped_column(Integer, default=0)
    client_id: Mapped[int | None] = mapped_column(
        ForeignKey("clients.id", ondelete="SET NULL"), index=True, default=None
    )
    deal_id: Mapped[int | None] = mapped_column(
        ForeignKey("deals.id", ondelete="SET NULL"), index=True, default=None
    )
    lead_id: Mapped[int | None] = mapped_column(
        ForeignKey("leads.id", ondelete="SET NULL"), index=True, default=None
    )
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    kind: Mapped[str] = mapped_column(String(20), default="task")  # task | callback
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user", "user_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32), default="info")
    title: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str] = mapped_column(String(300), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    read_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """Who did what to what, when and from where: the security-relevant actions (hub.crm.audit).
    The actor's login is kept as it was (the user may be renamed or deleted later)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_at", "at"), Index("ix_audit_events_action", "action", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    actor_login: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(40))
    target_type: Mapped[str] = mapped_column(String(20), default="")
    target_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    remote: Mapped[str] = mapped_column(String(64), default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


CALL_DIRECTIONS = ("inbound", "outbound", "internal")
CALL_STATUSES = ("ringing", "talking", "answered", "missed", "abandoned", "busy", "failed")


class Call(Base):
    """One phone call, keyed by the PBX's own id (AMI ``Linkedid``): a replayed fact changes nothing.

    The row appears when the first agent's phone rings (or when the call ends, if it never rang one)
    with status ``ringing``/``talking`` and gets its outcome when it ends (``ended_at`` set)."""

    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_started", "started_at", "id"),
        Index("ix_calls_status_started", "status", "started_at"),
        Index("ix_calls_agent_started", "agent_id", "started_at"),
        Index("ix_calls_number", "external_number", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    linkedid: Mapped[str] = mapped_column(String(200), unique=True)
    direction: Mapped[str] = mapped_column(String(10), default="inbound")
    status: Mapped[str] = mapped_column(String(10), default="ringing")
    external_number: Mapped[str | None] = mapped_column(String(64), default=None)
    did: Mapped[str | None] = mapped_column(String(64), default=None)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    agent_extension: Mapped[str | None] = mapped_column(String(32), default=None)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    wait_seconds: Mapped[int] = mapped_column(Integer, default=0)
    talk_seconds: Mapped[int] = mapped_column(Integer, default=0)
    hangup_cause: Mapped[int | None] = mapped_column(Integer, default=None)
    recording: Mapped[str | None] = mapped_column(String(300), default=None)
    # every recording in order, ``{"file": base name, "agent_extension": str | None}`` (``recording``
    # is the first one's file)
    recordings: Mapped[list[Any]] = mapped_column(default=list)
    client_id: Mapped[int | None] = mapped_column(
        ForeignKey("clients.id", ondelete="SET NULL"), index=True, default=None)
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), default=None)
    lead_id: Mapped[int | None] = mapped_column(
        ForeignKey("leads.id", ondelete="SET NULL"), index=True, default=None)
    deal_id: Mapped[int | None] = mapped_column(
        ForeignKey("deals.id", ondelete="SET NULL"), index=True, default=None)
    timeline_entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("timeline_entries.id", ondelete="SET NULL"), default=None)
    # The callback task a missed call created or joined (to find the open one of a number).
    callback_task_id: Mapped[int | None] = mapped_column(
        ForeignKey("tasks.id", ondelete="SET NULL"), index=True, default=None)
    # Every user whose phone rang for this call (a queue rings several): who gets call.answered/ended.
    rung_user_ids: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- messaging: Telegram, SMS (and e-mail) conversations -------------------------------------------

CHANNELS = ("telegram", "sms", "whatsapp", "email")
# in: received; out: queued → sending → (accepted →) sent → delivered (→ read), or undelivered / failed /
# unknown: every status a message is stored with (``messages.statuses.STATUS_RANK`` orders them)
MESSAGE_STATUSES = ("received", "queued", "sending", "unknown", "accepted", "sent", "delivered",
                    "undelivered", "failed", "read")


class Conversation(Base):
    """One chat with one outside party on one channel (a Telegram chat, a phone number, an address):
    what the inbox lists, with the person it belongs to, who handles it and how much is unread."""

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("channel", "address", name="uq_conversations_channel_address"),
        Index("ix_conversations_last", "last_message_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))
    # Telegram chat id, E.164 phone, lower-cased e-mail address
    address: Mapped[str] = mapped_column(String(320))
    title: Mapped[str] = mapped_column(String(300), default="")
    username: Mapped[str | None] = mapped_column(String(64), default=None)
    client_id: Mapped[int | None] = mapped_column(
        ForeignKey("clients.id", ondelete="SET NULL"), index=True, default=None)
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), default=None)
    lead_id: Mapped[int | None] = mapped_column(
        ForeignKey("leads.id", ondelete="SET NULL"), index=True, default=None)
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None)
    unread: Mapped[int] = mapped_column(Integer, default=0)
    last_message_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_text: Mapped[str] = mapped_column(String(300), default="")
    # "blocked": the party blocked the bot (Telegram my_chat_member kicked)
    state: Mapped[str] = mapped_column(String(20), default="open")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Message(Base):
    """An inbound or outgoing message; its timeline entry is what people read. Outgoing messages are
    the outbox: written ``queued`` with their entry in one transaction, sent by ``hub.outbox``."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_outbox", "status", "next_attempt_at"),
        Index("ix_messages_conversation", "conversation_id", "id"),
        UniqueConstraint("channel", "provider_id", name="uq_messages_channel_provider"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))
    direction: Mapped[str] = mapped_column(String(4))  # in | out
    status: Mapped[str] = mapped_column(String(12))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("timeline_entries.id", ondelete="SET NULL"), unique=True, default=None)
    # the channel's own id of the message: Telegram "<chat_id>:<message_id>", Twilio MessageSid, Message-ID
    provider_id: Mapped[str | None] = mapped_column(String(300), default=None)
    reply_to_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), default=None)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    text: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str] = mapped_column(String(500), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # a message sent in parts (a text, then files): how many went out (a retry sends only the rest)
    parts_sent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    error_code: Mapped[str | None] = mapped_column(String(40), default=None)
    error: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    status_at: Mapped[datetime | None] = mapped_column(default=None)




class ChannelCursor(Base):
    """Where a channel's intake resumes: the Telegram polling offset, an IMAP folder's last UID."""

    __tablename__ = "channel_cursors"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class FieldChange(Base):
    """One field of a client, contact, lead, deal or task changed: who, when, before → after
    (hub.crm.history). Values are kept as they read then (a user or stage by id and name), so the
    history reads the same after a rename; the author's name likewise."""

    __tablename__ = "field_changes"
    __table_args__ = (Index("ix_field_changes_entity", "entity_type", "entity_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity_type: Mapped[str] = mapped_column(String(16))
    entity_id: Mapped[int] = mapped_column(BigInteger)
    field: Mapped[str] = mapped_column(String(80))
    before: Mapped[Any] = mapped_column(JSONDocument, nullable=True, default=None)
    after: Mapped[Any] = mapped_column(JSONDocument, nullable=True, default=None)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    user_name: Mapped[str] = mapped_column(String(200), default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)


class AccessGrant(Base):
    """A user's phone rang for a call, or they answered it: for a while (the ``call_grant`` setting)
    they may open the caller's card and open deals although they are not theirs (``hub.crm.access``).
    Written by ``access`` itself whenever a call's rung users or answering agent change."""

    __tablename__ = "access_grants"
    __table_args__ = (Index("ix_access_grants_user", "user_id", "granted_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)

    call: Mapped[Call] = relationship()


class SearchDocument(Base):
    """What one search looks through (``hub.crm.finder``): a row per client, contact, lead, deal, task
    and message, letter, call or note of the timeline, written by database triggers on those tables
    (migration 0013) in the same transaction as every change. ``id`` is ``kind code × 2^40 + ref_id``
    (one kind, one id range); ``words`` is the text for full-text search, ``handles`` the name, phone
    digits, e-mails and INN for fragments; both with ё written е. The dialect's indexes (SQLite FTS5
    tables ``search_words``/``search_grams``, PostgreSQL GIN) are the migration's, not declared here."""

    __tablename__ = "search_documents"

    # SQLite: INTEGER, i.e. the rowid (64 bits there) the FTS tables point at
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
                                    autoincrement=False)
    kind: Mapped[str] = mapped_column(String(16))
    ref_id: Mapped[int] = mapped_column(BigInteger)
    words: Mapped[str] = mapped_column(Text)
    handles: Mapped[str] = mapped_column(Text)


class ClientMerge(Base):
    """One client merged into another (hub.crm.merge): what moved, so that it can be undone for a day.
    ``removed``: the removed client's row and tags; ``kept_before``: the kept client's fields that the
    merge changed, as they were; ``moved``: ``{table: [row ids]}`` that went to the kept client."""

    __tablename__ = "client_merges"

    id: Mapped[int] = mapped_column(primary_key=True)
    kept_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    removed_id: Mapped[int] = mapped_column(BigInteger)
    removed: Mapped[dict[str, Any]] = mapped_column(default=dict)
    kept_before: Mapped[dict[str, Any]] = mapped_column(default=dict)
    moved: Mapped[dict[str, Any]] = mapped_column(default=dict)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    merged_at: Mapped[datetime] = mapped_column(default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(default=None)
