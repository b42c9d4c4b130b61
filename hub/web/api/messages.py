"""Messages and the inbox: send (JSON, or multipart with files), retry, conversations (list, read one,
mark read, assign, make a lead of one that belongs to nobody) and moving a message's entry to another
deal of the same person."""

from __future__ import annotations

import hashlib
from typing import Any

from aiohttp import web

from hub.crm import inbox, messages
from hub.crm.attachments import content_type_of, sanitize_filename, store_bytes
from hub.crm.errors import ValidationError
from hub.web.api.attachments import upload_name
from hub.web.api.common import ok, paging
from hub.web.api.schemas import ID, ID_OR_NULL, TEXT, obj
from hub.web.errors import json_body, path_id, query_text
from hub.web.keys import CONFIG, DB, USER
from hub.web.routing import PAGING, Param, Routes, page_of, ref

routes = Routes("messages")

FORM_IDS = ("deal_id", "client_id", "lead_id", "reply_to")
FORM_TEXTS = ("channel", "text", "subject")
TEMPLATE_VARIABLE = "template_var_"

MESSAGE_IN = obj({
    "channel": {"enum": list(messages.SENDABLE)}, "deal_id": ID, "client_id": ID, "lead_id": ID,
    "text": TEXT, "reply_to": {**ID, "description": "the timeline entry id of the message answered"},
    "subject": TEXT,
    "template": {"type": "object", "description": "WhatsApp: an approved template (`[twilio] "
                 "whatsapp_templates`), the only message allowed 24 hours after the person's last one; "
                 "`text` stays empty. In a form: `template_sid` and `template_var_<name>` fields",
                 "properties": {"sid": TEXT, "variables": {"type": "object",
                                                           "additionalProperties": {"type": "string"}}},
                 "required": ["sid"]},
    "attachments": {"type": "array", "items": {"type": "string", "format": "binary"},
                    "description": "files: send multipart/form-data with these fields and file parts"},
}, ("channel",))
MESSAGE = ref("Message")
QUEUED = ref("QueuedMessage")
CONVERSATION = ref("Conversation")
CONVERSATION_FULL = ref("ConversationWithMessages")
CONVERSATION_LEAD = obj({"lead": ref("Lead"), "conversation": CONVERSATION}, ("lead", "conversation"))
CONVERSATION_PAGE = page_of("Conversation")
ASSIGN_IN = obj({"assignee_id": ID_OR_NULL}, ("assignee_id",))
MOVE_IN = obj({"deal_id": ID}, ("deal_id",))
CHANNEL = Param("channel", {"enum": list(messages.SENDABLE)}, "only this channel")
UNREAD = Param("unread", "boolean", "only conversations with unread messages")
ASSIGNEE = Param("assignee", description="me, none or a user id")


async def _form(request: web.Request) -> tuple[dict[str, Any], list[tuple[str, str, bytes]]]:
    """A multipart message: its fields (ids as integers) and its files."""
    form = await request.post()
    data: dict[str, Any] = {}
    variables: dict[str, str] = {}
    files: list[tuple[str, str, bytes]] = []
    for key, value in form.items():
        if not isinstance(value, str):
            if isinstance(value, web.FileField) and value.filename:
                content = value.file.read()
                if content:
                    files.append((upload_name(value.filename), value.content_type, content))
            continue
        if key in FORM_IDS:
            text = value.strip()
            if text:
                data[key] = int(text) if text.isdecimal() and len(text) < 19 else text
        elif key in FORM_TEXTS:
            data[key] = value.replace("\r\n", "\n")  # a browser's form sends a textarea's lines with CRLF
        elif key.startswith(TEMPLATE_VARIABLE):
            variables[key.removeprefix(TEMPLATE_VARIABLE)] = value
    sid = str(form.get("template_sid") or "").strip()
    if sid:
        data["template"] = {"sid": sid, "variables": variables}
    return data, files


@routes.post("/api/v1/messages",
             "Queue an outgoing message (JSON, or multipart/form-data with files) → the first queued "
             "message; `messages` lists every part when a long Telegram text was split",
             request=MESSAGE_IN, response=QUEUED, status=201, errors=(400, 401, 404, 413, 422))
async def send_message(request: web.Request) -> web.Response:
    server = request.app[CONFIG].server
    if request.content_type == "multipart/form-data":
        data, uploads = await _form(request)
    else:
        data, uploads = await json_body(request), []
        if "attachments" in data and data["attachments"] not in (None, []):
            raise ValidationError({"attachments": "send files as multipart/form-data"})
    stored: list[tuple[str, str, str, int]] = []
    total = 0
    for filename, content_type, content in uploads:
        total += len(content)
        if total > server.max_body_bytes:
            raise ValidationError({"attachments": f"is larger than {server.max_body_bytes} bytes"})
        name = sanitize_filename(filename)
        digest = hashlib.sha256(content).hexdigest()
        stored.append((name, content_type_of(content_type, name), digest, len(content)))
    async with request.app[DB].transaction() as s:
        queued = await messages.queue_message(s, request[USER], data, stored,
                                              templates=request.app[CONFIG].twilio.whatsapp_templates)
        # written only once the message is accepted (a refused one leaves nothing on disk), before
        # the commit (a file that cannot be written leaves no message)
        for _, _, content in uploads:
            await store_bytes(server.attachments_dir, content)
    return ok({**queued[0], "messages": queued}, 201)


@routes.post("/api/v1/messages/{id}/retry", "Send a failed message again", response=MESSAGE,
             errors=(401, 404, 422))
async def retry(request: web.Request) -> web.Response:
    message_id = path_id(request)
    async with request.app[DB].transaction() as s:
        return ok(await messages.retry_message(s, request[USER], message_id))


@routes.get("/api/v1/conversations", "The inbox: conversations across channels, newest first",
            response=CONVERSATION_PAGE, params=(CHANNEL, UNREAD, ASSIGNEE, *PAGING), errors=(401, 422))
async def list_conversations(request: web.Request) -> web.Response:
    unread = query_text(request, "unread", max_len=10)
    if unread is not None and unread not in ("true", "false", "1", "0"):
        raise ValidationError({"unread": "must be true or false"})
    async with request.app[DB].reading() as s:
        page = await inbox.list_conversations(
            s, request[USER], channel=query_text(request, "channel", max_len=20),
            unread=unread in ("true", "1"), assignee=query_text(request, "assignee", max_len=20),
            **paging(request))
    return ok(page)


@routes.get("/api/v1/conversations/{id}",
            "A conversation with its messages, newest last (`cursor` reads older ones)",
            response=CONVERSATION_FULL, params=PAGING, errors=(401, 404, 422))
async def get_conversation(request: web.Request) -> web.Response:
    conversation_id = path_id(request)
    async with request.app[DB].reading() as s:
        return ok(await inbox.get_conversation(s, request[USER], conversation_id, **paging(request)))


@routes.post("/api/v1/conversations/{id}/read", "Mark a conversation read (unread → 0)",
             response=CONVERSATION, errors=(401, 404))
async def read_conversation(request: web.Request) -> web.Response:
    conversation_id = path_id(request)
    async with request.app[DB].transaction() as s:
        return ok(await inbox.mark_read(s, request[USER], conversation_id))


@routes.patch("/api/v1/conversations/{id}", "Assign a conversation to a user (null: to nobody)",
              request=ASSIGN_IN, response=CONVERSATION, errors=(400, 401, 404, 422))
async def assign_conversation(request: web.Request) -> web.Response:
    conversation_id = path_id(request)
    data = await json_body(request)
    async with request.app[DB].transaction() as s:
        return ok(await inbox.assign(s, request[USER], conversation_id, data))


@routes.post("/api/v1/conversations/{id}/lead",
             "Make a lead of a conversation that belongs to nobody (letters kept out of the timeline: bulk "
             "mail, a noreply sender): the lead gets the address and the name, managed by the caller; the "
             "conversation is linked to it and its messages so far go on the lead's timeline. 422 when the "
             "conversation has a client or lead already",
             response=CONVERSATION_LEAD, status=201, errors=(401, 404, 422))
async def conversation_lead(request: web.Request) -> web.Response:
    conversation_id = path_id(request)
    region = request.app[CONFIG].phones.default_region
    async with request.app[DB].transaction() as s:
        return ok(await inbox.make_lead(s, request[USER], conversation_id, region=region), 201)


@routes.post("/api/v1/timeline/{id}/move", "Move a message's entry to another open deal of the same person",
             request=MOVE_IN, response=ref("TimelineEntry"), errors=(400, 401, 404, 422))
async def move_entry(request: web.Request) -> web.Response:
    entry_id = path_id(request)
    data = await json_body(request)
    async with request.app[DB].transaction() as s:
        return ok(await inbox.move_entry(s, request[USER], entry_id, data))
