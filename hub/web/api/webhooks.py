"""The channels' webhooks: Telegram updates and Twilio messages and status callbacks.

Thin: ``hub.web.webhooks`` reads the request and answers, the adapter checks the secret or the
signature and takes the update in; a channel that is not configured answers 404 (nothing there to call).
"""

from __future__ import annotations

from aiohttp import web

from hub.web import webhooks as hooks
from hub.web.errors import error_response
from hub.web.keys import TELEGRAM, TWILIO
from hub.web.routing import Routes, answer, ref

routes = Routes("webhooks")
NOT_CONFIGURED = "channel_not_configured"
# Twilio delivers a webhook again when it is answered 5xx
NOT_STORED = {500: answer("The webhook could not be stored (intake_failed): Twilio delivers it again",
                          ref("Error"))}


def _missing(channel: str) -> web.Response:
    return error_response(404, NOT_CONFIGURED, f"the {channel} channel is not configured on this hub")


@routes.post("/webhooks/telegram", "A Telegram update (X-Telegram-Bot-Api-Secret-Token checked)",
             response={"type": "object", "required": ["ok"], "properties": {"ok": {"enum": [True]}}},
             errors=(400, 403, 404, 503), public=True)
async def telegram_update(request: web.Request) -> web.StreamResponse:
    channel = request.app.get(TELEGRAM)
    if channel is None:
        return _missing("Telegram")
    return await hooks.telegram(channel, request)


@routes.post("/webhooks/twilio/sms", "An inbound SMS/MMS from Twilio (X-Twilio-Signature checked)",
             response={"type": "string", "description": "an empty TwiML <Response/>: no reply"},
             content_type="text/xml", errors=(400, 403, 404, 503), responses=NOT_STORED, public=True)
async def twilio_sms(request: web.Request) -> web.StreamResponse:
    channel = request.app.get(TWILIO)
    if channel is None:
        return _missing("Twilio")
    return await hooks.twilio_sms(channel, request)


@routes.post("/webhooks/twilio/status", "A Twilio status callback for a sent message (signature checked)",
             status=204, errors=(400, 403, 404, 503), responses=NOT_STORED, public=True)
async def twilio_status(request: web.Request) -> web.StreamResponse:
    channel = request.app.get(TWILIO)
    if channel is None:
        return _missing("Twilio")
    return await hooks.twilio_status(channel, request)
