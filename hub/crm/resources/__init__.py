"""The resources the API returns, each declared once as a typed structure (by feature: ``people``,
``deals``, ``calls``, ``messages``; ``base`` has what they share).

A resource's fields, their types and their meaning are written there and nowhere else: the core
builds each resource through its class (so a field cannot appear without its type), one serialiser
(``hub.serialise.plain``) turns it into the JSON-ready value that the API answers, the events carry
and the pages render, and the OpenAPI document's schemas are generated from these classes
(``hub.web.api.schemas``). Why msgspec: docs/decisions.md, «Typed resources and inputs».
"""

from hub.crm.resources.base import Id, Ref, Resource, Time, one_of
from hub.crm.resources.calls import (
    Call,
    CallAgent,
    Interaction,
    Match,
    OpenDeal,
    OpenTask,
    PopMatch,
    PopUp,
    Recording,
)
from hub.crm.resources.deals import (
    Attachment,
    Deal,
    DealStage,
    LossReason,
    Notification,
    Pipeline,
    Stage,
    Task,
    TimelineEntry,
)
from hub.crm.resources.history import Author, FieldChange
from hub.crm.resources.messages import (
    ChatMessage,
    Conversation,
    ConversationRow,
    ConversationWithMessages,
    Message,
    Person,
    QueuedMessage,
    ReplyTo,
)
from hub.crm.resources.people import Bounce, Client, Contact, ContactPoints, Lead, User

# The classes the OpenAPI document names as components (each by its class name).
COMPONENTS: tuple[type[Resource], ...] = (
    Client, Contact, Lead, Deal, Task, User, Pipeline, LossReason, TimelineEntry, Notification, Call, Match,
    PopUp, Message, ChatMessage, QueuedMessage, Conversation, ConversationWithMessages)
COMPONENTS += (FieldChange,)

__all__ = [
    "COMPONENTS", "Attachment", "Bounce", "Call", "CallAgent", "ChatMessage", "Client", "Contact",
    "ContactPoints", "Conversation", "ConversationRow", "ConversationWithMessages", "Deal", "DealStage", "Id",
    "Interaction", "Lead", "LossReason", "Match", "Message", "Notification", "OpenDeal", "OpenTask", "Person",
    "Pipeline", "PopMatch", "PopUp", "QueuedMessage", "Recording", "Ref", "ReplyTo", "Resource", "Stage",
    "Task", "Time", "TimelineEntry", "User", "one_of",
]
__all__ += ["Author", "FieldChange"]
