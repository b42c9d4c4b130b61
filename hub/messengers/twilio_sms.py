"""SMS through Twilio: signed webhooks in (messages and status callbacks), the REST API out.

(Skeleton: the interface the composition root wires; filled in by the Twilio work.)
"""

from __future__ import annotations

from aiohttp import web

from hub.config import TwilioConfig
from hub.crm.ports import MessageIntakePort, OutgoingMessage, SendReceipt

SMS_PATH = "/webhooks/twilio/sms"
STATUS_PATH = "/webhooks/twilio/status"


class TwilioChannel:
    """``handle_sms`` / ``handle_status`` answer the webhooks; ``send`` is the outbox's sender for
    ``sms``; ``start``/``stop`` with the hub; ``health`` goes to /healthz."""

    name = "sms"

    def __init__(self, config: TwilioConfig, *, public_url: str, intake: MessageIntakePort) -> None:
        self.config = config
        self.public_url = public_url
        self.intake = intake
        self.state = "starting"

    def health(self) -> str:
        return self.state

    async def start(self) -> None:
        self.state = "ready"

    async def stop(self) -> None:
        return None

    async def handle_sms(self, request: web.Request) -> web.Response:
        raise NotImplementedError

    async def handle_status(self, request: web.Request) -> web.Response:
        raise NotImplementedError

    async def send(self, message: OutgoingMessage) -> SendReceipt:
        raise NotImplementedError
