"""The one door into the core for channels: plain frozen facts and the intake they go through.

A channel adapter (``hub.telephony``...) imports only this module: it translates its protocol's
events into these facts and hands them to an intake it was given by the composition root
(``hub.app`` builds ``hub.crm.call_intake.CallIntake(db, settings)``). Nothing here touches the
database, so importing it costs an adapter nothing and keeps ``sqlalchemy`` and the ORM out of it.

Facts name their call by ``call_key`` — the PBX's own id (AMI ``Linkedid``): the intake is
idempotent on it. Times are aware datetimes (``None``: "now"). Numbers are as the PBX gave them;
the core normalises them (E.164 in ``CallSettings.region``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from hub.delivery import JournalProcessor as JournalProcessor
from hub.delivery import PermanentFailure as PermanentFailure
from hub.delivery import RetryLater as RetryLater

CallDirection = Literal["inbound", "outbound", "internal"]
CallStatus = Literal["answered", "missed", "abandoned", "busy", "failed"]
UnknownCaller = Literal["auto", "ask"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallSettings:
    """The ``[asterisk]`` / ``[phones]`` values the call intake needs (the core reads no config)."""

    region: str = "RU"
    # "auto": a lead is created (Unsorted) when an unknown number rings; "ask": the agent decides.
    unknown_caller: UnknownCaller = "auto"
    # numbers never made into leads nor given a callback task (any format; normalised by the core)
    ignored_numbers: tuple[str, ...] = ()
    # a callback task for a missed call is due this long after the call ended
    callback_due_minutes: int = 30


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRinging:
    """An agent's phone started ringing (a queue call gives one per agent rung)."""

    call_key: str
    direction: CallDirection
    number: str | None  # the external party (caller on inbound, callee on outbound)
    did: str | None
    extension: str  # the agent phone that rings
    at: datetime | None = None
    started_at: datetime | None = None
    caller_extension: str | None = None  # an internal call: the colleague's phone that calls
    caller_name: str | None = None  # the caller's display name from the PBX (names a new lead)
    hidden_number: bool = False  # the caller withheld the number: «Скрытый номер», no lead


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRingEnded:
    """An agent's phone stopped ringing while the call goes on unanswered (a queue moved on to the
    next member; the agent declined or was busy): that agent's screen-pop closes."""

    call_key: str
    direction: CallDirection
    number: str | None
    did: str | None
    extension: str
    reason: str = ""  # the PBX's word for it (NOANSWER, BUSY, …)
    at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAnsweredFact:
    """Somebody took the call: ``extension`` is the agent who talks (outbound: who placed it)."""

    call_key: str
    direction: CallDirection
    number: str | None
    did: str | None
    extension: str | None
    at: datetime | None = None
    wait_seconds: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEndedFact:
    """The call is over, with its outcome. ``agent_extension``: the agent who answered last; for an
    unanswered call the last agent tried; for an outbound call the agent who placed it."""

    call_key: str
    direction: CallDirection
    status: CallStatus
    number: str | None
    did: str | None
    agent_extension: str | None
    started_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    wait_seconds: float = 0.0
    talk_seconds: float = 0.0
    hangup_cause: int | None = None
    recording: str | None = None  # the first recording's file name (base name under recordings_dir)
    # every recording in the order they were made (one per agent leg: a transfer makes two), and the
    # agent extension of each where known (same length, or empty when none is known)
    recordings: tuple[str, ...] = ()
    recording_extensions: tuple[str | None, ...] = ()
    caller_name: str | None = None  # the caller's display name from the PBX (names a new lead)
    rung_extensions: tuple[str, ...] = ()  # every agent extension that rang, in order

    @property
    def missed(self) -> bool:
        """An inbound call nobody took: a callback is due."""
        return self.direction == "inbound" and self.status != "answered"


class CallIntakePort(Protocol):
    """What a telephony adapter calls, from one task per call (a call's facts one after another;
    several calls at once): each fact's events are published after the commit of the unit of work
    that applied it (facts of different calls may share one); the result comes after that commit."""

    async def ringing(self, fact: CallRinging) -> dict[str, Any]:
        """→ the screen-pop payload sent to the rung agent as ``call.ringing``."""
        ...

    async def ring_ended(self, fact: CallRingEnded) -> dict[str, Any] | None:
        """→ ``call.ring_ended`` sent to that agent (None when the call is unknown or over)."""
        ...

    async def answered(self, fact: CallAnsweredFact) -> dict[str, Any] | None: ...

    async def ended(self, fact: CallEndedFact) -> dict[str, Any] | None:
        """→ the stored call (API shape); a replayed end changes nothing."""
        ...

    async def close_unfinished(self, live: frozenset[str]) -> list[dict[str, Any]]:
        """After the PBX listed its calls in progress (``live``, with those the listing itself ended):
        every other call the database holds as unfinished, left by an earlier run of the hub, ends
        now with what is known of it. → the calls so ended."""
        ...


# --- messaging: what the Telegram and SMS (and later e-mail) adapters hand the core ----------------------

MessageChannel = Literal["telegram", "sms", "whatsapp", "email"]


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundFile:
    """A file that came with a message, already downloaded by the adapter."""

    filename: str
    content_type: str
    data: bytes
    # e-mail: an inline part (an image the HTML shows through "cid:<content_id>")
    content_id: str | None = None
    inline: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundMessage:
    """A message from outside. ``provider_id`` is the channel's own id of the message (Telegram
    ``"<chat_id>:<message_id>"``, Twilio ``MessageSid``): taking the same message twice adds nothing;
    ``edited`` replaces the text of the message taken before under that id.

    ``address`` names the conversation: the Telegram chat id, the sender's phone, the e-mail address.
    ``sender_id`` and ``username`` identify a Telegram sender (numeric id first, then @username).
    """

    channel: MessageChannel
    provider_id: str
    address: str
    text: str = ""
    sender_name: str = ""
    sender_id: str | None = None
    username: str | None = None
    files: tuple[InboundFile, ...] = ()
    at: datetime | None = None
    edited: bool = False
    reply_to_provider_id: str | None = None
    # a /start deep-link payload or another campaign mark: kept as a new lead's source / UTM
    source: str | None = None
    utm: dict[str, str] | None = None
    # a shared contact: its phone; ``shared_own_phone``: the sender shared their own number
    shared_phone: str | None = None
    shared_own_phone: bool = False
    # what else the channel said, shown with the entry (location, sticker emoji, media urls...)
    extra: dict[str, Any] | None = None
    # where it was sent to (our Twilio number, our mailbox)
    to_address: str | None = None
    # e-mail: the subject, the sanitised HTML, the Message-IDs it answers (In-Reply-To, then
    # References, newest first), the other addresses on it (To, Cc) for when the sender is one of us,
    # the mailbox it came to, and whether it may become a lead (not an auto-reply, bounce, bulk or
    # noreply letter); a bounce names the Message-ID of ours that did not arrive, and why
    subject: str = ""
    html: str | None = None
    full_text: str | None = None  # the whole body when ``text`` is only the new part of a reply
    thread_ids: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()
    mailbox: str | None = None
    lead_allowed: bool = True
    bounce_of: str | None = None
    bounce_reason: str | None = None
    # the login of the user a new conversation goes to (a shared mailbox assigned to someone)
    assignee: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryStatus:
    """What the channel reports about a message we sent (Twilio status callback)."""

    channel: MessageChannel
    provider_id: str
    status: str  # queued | sent | delivered | undelivered | failed
    error_code: str | None = None
    error: str | None = None
    at: datetime | None = None


class MessageIntakePort(Protocol):
    """What a messaging adapter calls; one unit of work per fact, events published after commit."""

    async def received(self, message: InboundMessage, delivery_key: str | None = None,
                       journal_id: int | None = None) -> dict[str, Any] | None:
        """→ the stored message (API shape); None when this delivery or message was taken already.
        ``delivery_key``: the channel's delivery id (Telegram ``update_id``), remembered in the
        same transaction; ``journal_id``: the journaled delivery it came from, marked done in the
        same transaction."""
        ...

    async def journal(self, channel: MessageChannel, key: str, body: bytes) -> bool:
        """Store a webhook's delivery before answering it (committed when this returns); False when
        the key was delivered before. ``hub.inbound.worker`` hands it to the channel's ``process`` later."""
        ...

    async def finish(self, journal_id: int) -> bool:
        """A journaled delivery that stores nothing (a status update) is done."""
        ...

    async def delivery_seen(self, channel: MessageChannel, delivery_key: str) -> bool:
        """Remember a delivery that carries no message (a Telegram status update); False if seen."""
        ...

    async def blocked(self, channel: MessageChannel, address: str, blocked: bool) -> None:
        """The party blocked (or unblocked) us: the conversation shows it."""
        ...

    async def part_sent(self, message_id: int, parts: int, first_part_id: str) -> None:
        """``parts`` parts of our message ``message_id`` have gone out (committed at once, so a
        retry after a crash starts after them); ``first_part_id`` is the provider's id of the first."""
        ...

    async def status(self, update: DeliveryStatus) -> dict[str, Any] | None:
        """Apply a delivery status; a status never moves backwards (delivered stays delivered).
        Raises ``StatusBeforeSend`` when the message may be one whose send has not returned yet."""
        ...

    async def cursor(self, name: str) -> str | None: ...

    async def set_cursor(self, name: str, value: str) -> None: ...


# --- the outbox: what a channel's sender is given and what it answers -------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class OutgoingFile:
    filename: str
    content_type: str
    path: str  # the stored file on disk


@dataclass(frozen=True, slots=True, kw_only=True)
class OutgoingMessage:
    """One message for a sender: ``id`` is ours (stable across retries), ``address`` the conversation's."""

    id: int
    channel: MessageChannel
    address: str
    text: str
    files: tuple[OutgoingFile, ...] = ()
    reply_to_provider_id: str | None = None  # the provider id of the message answered
    subject: str = ""
    attempt: int = 1
    # e-mail: the thread's earlier Message-IDs (References), the mailbox to send from (None: the
    # first), and the person's name for the To header
    references: tuple[str, ...] = ()
    mailbox: str | None = None
    to_name: str = ""
    # a message sent in parts: how many went out on earlier attempts, and the first one's id
    parts_sent: int = 0
    first_part_id: str | None = None
    # WhatsApp outside the 24-hour window: an approved template (Twilio ContentSid) and its variables
    template_sid: str | None = None
    template_variables: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SendReceipt:
    """The channel accepted the message: its own id for it, and the status it reported."""

    provider_id: str | None
    status: str = "sent"  # sent | queued (Twilio accepted it; callbacks follow)


class StatusBeforeSend(RetryLater):
    """A delivery status for a message we do not know, while a send on that channel is still waiting
    for the provider's id (Twilio can call back before our request has returned and been stored):
    the report is taken in again later instead of being dropped."""


class Sender(Protocol):
    """A channel's sender, registered with the outbox by the composition root."""

    async def send(self, message: OutgoingMessage) -> SendReceipt:
        """Send or raise ``RetryLater`` / ``PermanentFailure``; any other exception counts as
        "the result is unknown" (the request may have reached the channel)."""
        ...


# --- every channel -----------------------------------------------------------------------------------------

class Channel(Protocol):
    """What the composition root wires every channel adapter through (``hub.app``): started with the
    hub, stopped before it, its states shown by ``/healthz`` under its names."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def healths(self) -> dict[str, Callable[[], str]]: ...


# --- click-to-call: what the core asks of the telephony adapter ------------------------------------------

class DialerUnavailable(Exception):
    """The PBX is not connected: the call is refused now, nothing is dialled later."""


class DialRefused(Exception):
    """The PBX refused to place the call (the message says why)."""


class Dialer(Protocol):
    """The telephony adapter's click-to-call (``hub.crm.click_to_call`` uses it)."""

    async def originate(self, extension: str, number: str, action_id: str) -> Any:
        """Ring ``extension``, then dial ``number``; the call itself arrives later as call facts, the
        ``CallStarted`` carrying ``action_id``. Raises ``DialerUnavailable`` / ``DialRefused``."""
        ...


# --- presence: what the telephony adapter tells the core about the agents' phones ------------------------

# free: idle and reachable; ringing; on_call: in use, busy or on hold; unavailable: offline,
# unregistered or unknown; dnd: do-not-disturb set on the PBX
PresenceState = Literal["free", "ringing", "on_call", "unavailable", "dnd"]


class PresencePort(Protocol):
    """What a telephony adapter calls (synchronously, in the PBX's event order) when phones change.
    Presence is no database fact: the core keeps it in memory and publishes ``presence.changed``."""

    def phones_changed(self, states: dict[str, PresenceState], *, complete: bool = False) -> None:
        """``states``: extension → its phone's state now. ``complete``: the PBX's whole picture
        (after a (re)connect's listing): an extension not in it is ``unavailable``."""
        ...
