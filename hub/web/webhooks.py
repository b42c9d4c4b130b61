"""The HTTP side of the channels' webhooks: read the request, hand plain values to the adapter, answer.

The adapters (``hub.messengers.telegram``, ``hub.messengers.twilio_sms``) know no HTTP framework: they
get the body (or the form's pairs), the secret or signature header's value and the path, and answer a
``hub.webhook.Outcome``; this module reads those from the request and words the outcome as the status
codes and bodies Telegram and Twilio expect:

=====================  ==================================  =================================================
outcome                Telegram (``/webhooks/telegram``)   Twilio (``/webhooks/twilio/sms``, ``…/status``)
=====================  ==================================  =================================================
accepted, duplicate    200 ``{"ok": true}``                200 an empty TwiML ``<Response/>`` (sms), 204
ignored                —                                   204 (a status the hub does not track)
not configured         403 (no webhook_secret)             503 (no public_url or auth_token: unsigned)
forbidden              403 (wrong or missing secret)       403 (wrong or missing signature)
malformed              400                                 400 (+ the missing fields)
not stored             503: Telegram delivers again        500: Twilio delivers again
=====================  ==================================  =================================================

The secret and the configuration are checked before the body is read; Twilio's form must be
``application/x-www-form-urlencoded`` (400 otherwise). Errors are the API's ``{"error": {"code",
"message", "fields"}}``; the words are here (answers to Telegram's and Twilio's servers, not to users).
"""

from __future__ import annotations

from aiohttp import web

from hub.web.errors import error_response
from hub.webhook import Outcome, TelegramWebhook, TwilioWebhooks, Verdict

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SIGNATURE_HEADER = "X-Twilio-Signature"
FORM = "application/x-www-form-urlencoded"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

MESSAGES = {
    # Telegram
    "webhook_disabled": "no webhook_secret is configured: updates are not accepted",
    "forbidden": f"wrong or missing {SECRET_HEADER}",
    "bad_json": "the body is not JSON: {detail}",
    "bad_update": "an Update object with an integer update_id is expected",
    "unavailable": "the update could not be stored; deliver it again",
    # Twilio
    "public_url_not_configured": ("[server] public_url is not set on this hub: Twilio's signature cannot "
                                  "be checked, so the webhook is refused"),
    "auth_token_not_configured": "[twilio] auth_token is not set",
    "invalid_signature": f"{SIGNATURE_HEADER} is missing or wrong",
    "validation_failed": "{fields} is required",
    "intake_failed": "the webhook could not be stored; try again",
}
TELEGRAM_STATUS = {Verdict.NOT_CONFIGURED: 403, Verdict.FORBIDDEN: 403, Verdict.MALFORMED: 400,
                   Verdict.NOT_STORED: 503}
TWILIO_STATUS = {Verdict.NOT_CONFIGURED: 503, Verdict.FORBIDDEN: 403, Verdict.MALFORMED: 400,
                 Verdict.NOT_STORED: 500}


def _refusal(outcome: Outcome, statuses: dict[Verdict, int]) -> web.Response:
    message = MESSAGES.get(outcome.reason, outcome.reason).format(
        detail=outcome.detail, fields=", ".join(outcome.fields))
    return error_response(statuses[outcome.verdict], outcome.reason, message[:300],
                          {name: "is required" for name in outcome.fields})


async def telegram(channel: TelegramWebhook, request: web.Request) -> web.Response:
    """``POST /webhooks/telegram``: the secret header first, then the update's body."""
    outcome = channel.webhook_refusal(request.headers.get(SECRET_HEADER, ""))
    if outcome is None:
        outcome = await channel.take_webhook(await request.read())
    if outcome.taken:
        return web.json_response({"ok": True})
    return _refusal(outcome, TELEGRAM_STATUS)


async def _twilio_form(channel: TwilioWebhooks,
                       request: web.Request) -> tuple[list[tuple[str, str]], bytes] | web.Response:
    """The form's pairs (as posted, a field may repeat) and the raw body, or the refusal."""
    refusal = channel.webhook_refusal()
    if refusal is not None:
        return _refusal(refusal, TWILIO_STATUS)
    if request.content_type != FORM:
        return error_response(400, "bad_request", f"expected {FORM}")
    try:
        form = await request.post()
    except (ValueError, UnicodeDecodeError):
        return error_response(400, "bad_request", "the form body cannot be read")
    return [(name, value) for name, value in form.items() if isinstance(value, str)], await request.read()


async def twilio_sms(channel: TwilioWebhooks, request: web.Request) -> web.Response:
    """``POST /webhooks/twilio/sms``: an inbound SMS, MMS or WhatsApp message."""
    read = await _twilio_form(channel, request)
    if isinstance(read, web.Response):
        return read
    form, body = read
    outcome = await channel.take_sms(form, body, path=request.raw_path,
                                     signature=request.headers.get(SIGNATURE_HEADER, ""))
    if outcome.taken:
        return web.Response(text=EMPTY_TWIML, content_type="text/xml")
    return _refusal(outcome, TWILIO_STATUS)


async def twilio_status(channel: TwilioWebhooks, request: web.Request) -> web.Response:
    """``POST /webhooks/twilio/status``: a status callback of a message the hub sent."""
    read = await _twilio_form(channel, request)
    if isinstance(read, web.Response):
        return read
    form, body = read
    outcome = await channel.take_status(form, body, path=request.raw_path,
                                        signature=request.headers.get(SIGNATURE_HEADER, ""))
    if outcome.taken:
        return web.Response(status=204)
    return _refusal(outcome, TWILIO_STATUS)
