"""What a channel adapter makes of a webhook delivery: plain data in, a plain outcome out.

The web layer (``hub.web.webhooks``) reads the HTTP request — the body or form, the secret or
signature header — and hands those values to the adapter (``hub.messengers.telegram``,
``hub.messengers.twilio_sms``), which checks them, journals the delivery and answers an ``Outcome``;
the web layer words that as HTTP (status code, body). So no adapter knows an HTTP framework, and the
answers to Telegram and Twilio are written in one place.

``reason`` is a machine code (``bad_json``, ``invalid_signature``…), never a sentence: the words are
the web layer's. ``detail`` carries what only the adapter knows (a JSON parser's complaint), ``fields``
the names of missing required fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Verdict(StrEnum):
    ACCEPTED = "accepted"  # stored now (journaled, committed): the sender may forget it
    DUPLICATE = "duplicate"  # stored before (a repeated delivery): answered like an accepted one
    IGNORED = "ignored"  # nothing to store (e.g. a status the hub does not track): answered like accepted
    NOT_CONFIGURED = "not_configured"  # this hub cannot check the delivery (no secret, public_url, token)
    FORBIDDEN = "forbidden"  # a wrong or missing secret or signature
    MALFORMED = "malformed"  # not what the channel sends (bad JSON, a required field missing)
    NOT_STORED = "not_stored"  # the journal failed: the sender should deliver it again


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    reason: str = ""
    detail: str = ""
    fields: tuple[str, ...] = ()

    @property
    def taken(self) -> bool:
        """Whether the sender is told the delivery arrived (a 2xx)."""
        return self.verdict in (Verdict.ACCEPTED, Verdict.DUPLICATE, Verdict.IGNORED)


ACCEPTED = Outcome(Verdict.ACCEPTED)
DUPLICATE = Outcome(Verdict.DUPLICATE)


def refused(verdict: Verdict, reason: str, detail: str = "", fields: tuple[str, ...] = ()) -> Outcome:
    return Outcome(verdict, reason, detail, fields)


class TelegramWebhook(Protocol):
    """The Telegram adapter as its webhook route sees it."""

    def webhook_refusal(self, secret_token: str) -> Outcome | None: ...

    async def take_webhook(self, body: bytes) -> Outcome: ...


class TwilioWebhooks(Protocol):
    """The Twilio adapter as its webhook routes (SMS and WhatsApp, status callbacks) see it."""

    def webhook_refusal(self) -> Outcome | None: ...

    async def take_sms(self, form: Sequence[tuple[str, str]], body: bytes, *, path: str,
                       signature: str) -> Outcome: ...

    async def take_status(self, form: Sequence[tuple[str, str]], body: bytes, *, path: str,
                          signature: str) -> Outcome: ...
