"""How a delivery fails: what a channel's sender (through the outbox) or a journaled delivery's
processor (through the inbound journal) raises. Infrastructure and channels share these;
``hub.crm.ports`` names them for the channels."""

from __future__ import annotations

from typing import Protocol


class RetryLater(Exception):
    """A temporary failure (flood control, 5xx, timeout): try again, not before ``after`` seconds."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after = after


class PermanentFailure(Exception):
    """The channel refused the message for good (bot blocked, chat not found, invalid number)."""

    def __init__(self, reason: str, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class JournalProcessor(Protocol):
    """A channel's handler of its journaled deliveries (``hub.inbound.worker`` calls it, oldest first)."""

    async def process(self, key: str, body: bytes, journal_id: int) -> None:
        """Take the delivery in: ``intake.received(..., journal_id=journal_id)`` or
        ``intake.finish(journal_id)``. An exception: tried again later."""
        ...
