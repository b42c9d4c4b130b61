"""Messages: Telegram, SMS, WhatsApp and e-mail conversations in the CRM, by feature.

- ``inbound`` — taking one message in (``take_message``): idempotent (the delivery key and the
  message's ``provider_id`` are under unique constraints; a replay adds nothing, an edit replaces the
  text of the entry); the sender identified or made a lead in Unsorted (``senders``); the entry on the
  person's single open deal, else the most recently active one, else on the person's own timeline;
  the conversation's unread count and preview; ``message.received``. Its statements: ``statements``.
- ``outbound`` — ``queue_message``: the message and its timeline entry written ``queued`` in one
  transaction (``hub.outbox`` sends it); WhatsApp's templates and 24-hour window; ``retry_message``.
- ``statuses`` — providers' delivery reports; a status never moves backwards.
- ``conversations`` — who a conversation is with, where an entry goes, the API shapes.
- ``intake`` — ``MessageIntake``, the ``hub.crm.ports.MessageIntakePort`` the composition root hands
  an adapter: it schedules the units of work the rules above run in.
"""

from hub.crm.messages.conversations import (
    LEAD_SOURCES,
    MAX_PARTS,
    PHONE_CHANNELS,
    PREVIEW,
    SENDABLE,
    TEXT_LIMITS,
    WHATSAPP_WINDOW,
    Person,
    _recipients,
    conversation_dict,
    conversation_row,
    message_dict,
    message_resource,
    placement_deal,
    split_text,
)
from hub.crm.messages.inbound import take_message
from hub.crm.messages.intake import MessageIntake, UnitOfWork
from hub.crm.messages.outbound import (
    queue_message,
    retry_message,
    template_placeholders,
    whatsapp_window_ends,
)
from hub.crm.messages.statuses import FINAL, STATUS_RANK, apply_status, show_status

__all__ = [
    "FINAL", "LEAD_SOURCES", "MAX_PARTS", "PHONE_CHANNELS", "PREVIEW", "SENDABLE", "STATUS_RANK",
    "TEXT_LIMITS", "WHATSAPP_WINDOW", "MessageIntake", "Person", "UnitOfWork", "_recipients",
    "apply_status", "conversation_dict", "conversation_row", "message_dict", "message_resource",
    "placement_deal", "queue_message", "retry_message", "show_status", "split_text", "take_message",
    "template_placeholders", "whatsapp_window_ends",
]
