"""Files attached to timeline entries (a note's file; later a letter's or a message's media).

The bytes live on disk under ``server.attachments_dir``, named by their SHA-256
(``ab/abcdef…``): the same file attached twice is stored once, a stored file never changes, and
the database row (``Attachment``) carries the name, type and size the user sees. Who may read an
attachment is decided by what it is on: the entry's deal, client or lead (``timeline.get_entry``),
or the task.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import access, events
from hub.crm.errors import Forbidden, NotFound, ValidationError
from hub.crm.models import Attachment, Deal, Task, User, utcnow
from hub.crm.timeline import entry_dict, entry_scope, get_entry, user_refs
from hub.crm.validate import iso
from hub.filenames import sanitize_filename as sanitize_filename  # the one sanitiser, re-exported

CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")


def content_type_of(declared: Any, filename: str) -> str:
    """The declared type when it looks like one, else a guess from the name, else octet-stream."""
    if isinstance(declared, str):
        value = declared.split(";")[0].strip().lower()
        if CONTENT_TYPE.match(value) and value != "application/octet-stream":
            return value
    guessed, _ = mimetypes.guess_type(filename)
    return guessed or "application/octet-stream"


def attachment_dict(a: Attachment) -> dict[str, Any]:
    return {"id": a.id, "entry_id": a.entry_id, "task_id": a.task_id, "filename": a.filename,
            "content_type": a.content_type, "size": a.size, "sha256": a.sha256,
            "created_at": iso(a.created_at), "url": f"/api/v1/attachments/{a.id}"}


def stored_path(directory: str | Path, sha256: str) -> Path:
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError("not a SHA-256 digest")
    return Path(directory) / sha256[:2] / sha256


def _write(directory: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    target = stored_path(directory, digest)
    if target.exists() and target.stat().st_size == len(data):
        return digest
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)  # atomic: a reader never sees half a file
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest


async def store_bytes(directory: str | Path, data: bytes) -> str:
    """Write ``data`` under ``directory`` by its SHA-256 (once) and return the digest."""
    return await asyncio.to_thread(_write, Path(directory), data)


def _check_file(filename: Any, data: Any, max_bytes: int) -> str:
    if not isinstance(data, bytes | bytearray):
        raise ValidationError({"file": "is required"})
    if not data:
        raise ValidationError({"file": "is empty"})
    if len(data) > max_bytes:
        raise ValidationError({"file": f"is larger than {max_bytes} bytes"})
    return sanitize_filename(filename)


async def attach_to_entry(session: AsyncSession, actor: User, entry_id: int, *, filename: Any,
                          content_type: Any, data: bytes, directory: str | Path,
                          max_bytes: int) -> dict[str, Any]:
    """Attach a file to a timeline entry the actor may see; on a deal, only its responsible user or
    staff may (as for pinning). Emits ``timeline.updated`` with the entry and its attachments."""
    entry = await get_entry(session, actor, entry_id)
    if entry.deal_id is not None:
        deal = await session.get(Deal, entry.deal_id)
        if deal is not None and not access.is_staff(actor) and deal.responsible_id != actor.id:
            raise Forbidden("only the responsible user or a manager may attach files to this deal")
    name = _check_file(filename, data, max_bytes)
    digest = await store_bytes(directory, bytes(data))
    attachment = Attachment(entry_id=entry.id, filename=name,
                            content_type=content_type_of(content_type, name), size=len(data),
                            sha256=digest, created_at=utcnow())
    entry.attachments.append(attachment)
    await session.flush()
    result = entry_dict(entry, await user_refs(session, [entry.author_id]))
    events.emit(session, "timeline.updated", {"entry": result}, scope=await entry_scope(session, entry))
    return attachment_dict(attachment)


async def open_attachment(session: AsyncSession, actor: User, attachment_id: Any,
                          directory: str | Path) -> tuple[dict[str, Any], Path]:
    """The attachment's dict and the path of its bytes, if the actor may see what it is on
    (else NotFound, as for the entry itself). NotFound too when the bytes are gone."""
    if (isinstance(attachment_id, bool) or not isinstance(attachment_id, int)
            or not 0 < attachment_id <= 2**62):
        raise NotFound("attachment not found")
    attachment = await session.get(Attachment, attachment_id)
    if attachment is None:
        raise NotFound("attachment not found")
    try:
        if attachment.entry_id is not None:
            await get_entry(session, actor, attachment.entry_id)
        elif attachment.task_id is not None:
            await access.visible(session, actor, await session.get(Task, attachment.task_id), "task")
        else:
            raise NotFound("attachment not found")
    except NotFound as exc:
        raise NotFound("attachment not found") from exc
    try:
        path = stored_path(directory, attachment.sha256)
    except ValueError:
        raise NotFound("attachment not found") from None
    if not await asyncio.to_thread(path.is_file):
        raise NotFound("the attachment's file is missing")
    return attachment_dict(attachment), path
