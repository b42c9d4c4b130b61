"""Files on timeline entries: upload (multipart) and download with the entry's access rule."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web

from hub.crm import attachments
from hub.crm.errors import ValidationError
from hub.web.api.common import ok
from hub.web.errors import path_id
from hub.web.keys import CONFIG, DB, USER
from hub.web.routing import BINARY, Routes, file_answers

routes = Routes("timeline")

ATTACHMENT = {
    "type": "object",
    "required": ["id", "filename", "content_type", "size", "url"],
    "properties": {
        "id": {"type": "integer"}, "entry_id": {"type": ["integer", "null"]},
        "task_id": {"type": ["integer", "null"]}, "filename": {"type": "string"},
        "content_type": {"type": "string"}, "size": {"type": "integer"}, "sha256": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"}, "url": {"type": "string"},
    },
}


async def read_upload(request: web.Request, field: str = "file") -> tuple[str, str, bytes] | None:
    """(filename, content type, bytes) of a multipart file field, or None when none was sent.
    The body is bounded by ``server.max_body_bytes`` (413 above it)."""
    if request.content_type != "multipart/form-data":
        raise ValidationError({"file": "send the file as multipart/form-data"})
    form = await request.post()
    part: Any = form.get(field)
    if part is None or isinstance(part, str) or not getattr(part, "filename", None):
        return None
    return upload_name(part.filename), part.content_type, part.file.read()


def upload_name(raw: str) -> str:
    """Browsers send the name as UTF-8; some clients (aiohttp's, Python's) percent-encode it."""
    if re.search(r"%[0-9A-Fa-f]{2}", raw):
        try:
            return unquote(raw, errors="strict")
        except UnicodeDecodeError:
            return raw
    return raw


def disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the real one in RFC 5987 form."""
    fallback = re.sub(r"[^A-Za-z0-9._ -]", "_", filename).strip() or "file"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@routes.post("/api/v1/timeline/{id}/attachments",
             "Attach a file to a timeline entry (multipart/form-data, field `file`; at most "
             "server.max_body_bytes)", response=ATTACHMENT, status=201,
             errors=(401, 403, 404, 413, 422))
async def upload_attachment(request: web.Request) -> web.Response:
    entry_id = path_id(request)
    upload = await read_upload(request)
    if upload is None:
        raise ValidationError({"file": "is required"})
    filename, content_type, data = upload
    server = request.app[CONFIG].server
    async with request.app[DB].transaction() as s:
        result = await attachments.attach_to_entry(
            s, request[USER], entry_id, filename=filename, content_type=content_type, data=data,
            directory=server.attachments_dir, max_bytes=server.max_body_bytes)
    return ok(result, 201)


@routes.get("/api/v1/attachments/{id}",
            "Download an attached file (who may see its entry's deal, client or lead, or its task)",
            response={**BINARY, "description": "the file, as its own content type "
                      "(application/octet-stream when unknown)"}, content_type="*/*",
            errors=(401, 404), responses=file_answers("*/*"))
async def download_attachment(request: web.Request) -> web.StreamResponse:
    attachment_id = path_id(request)
    async with request.app[DB].reading() as s:
        info, path = await attachments.open_attachment(s, request[USER], attachment_id,
                                                       request.app[CONFIG].server.attachments_dir)
    return web.FileResponse(path, headers={
        "Content-Type": info["content_type"],
        "Content-Disposition": disposition(info["filename"]),
        "Cache-Control": "private, no-store",
    })
