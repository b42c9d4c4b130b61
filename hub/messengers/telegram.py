"""Telegram through python-telegram-bot: webhook or long polling in, the outbox's sender out.

(Skeleton: the interface the composition root wires; filled in by the Telegram work.)
"""

from __future__ import annotations

from aiohttp import web

from hub.config import TelegramConfig
from hub.crm.ports import MessageIntakePort, OutgoingMessage, SendReceipt

WEBHOOK_PATH = "/webhooks/telegram"


class TelegramChannel:
    """``start``/``stop`` with the hub; ``handle_webhook`` answers ``POST /webhooks/telegram``;
    ``send`` is the outbox's sender for ``telegram``; ``health`` goes to /healthz."""

    name = "telegram"

    def __init__(self, config: TelegramConfig, *, public_url: str, intake: MessageIntakePort) -> None:
        self.config = config
        self.public_url = public_url
        self.intake = intake
        self.state = "starting"

    def health(self) -> str:
        return self.state

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        return None

    async def handle_webhook(self, request: web.Request) -> web.Response:
        raise NotImplementedError

    async def send(self, message: OutgoingMessage) -> SendReceipt:
        raise NotImplementedError
