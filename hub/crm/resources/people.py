"""People: clients, their contact persons, leads and users, each with its contact points."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from hub.crm.resources.base import (
    ClientKind,
    Custom,
    Id,
    Language,
    Ref,
    Resource,
    Role,
    Time,
)


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
    rejected_at: Time | None
    rejected_reason: Annotated[str, Meta(description="why it was rejected from Unsorted")]


class User(ContactPoints, kw_only=True):
    id: Id
    login: str
    name: str
    role: Role
    language: Language
    active: bool
    extensions: list[str]
    created_at: Time | None
