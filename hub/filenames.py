"""The one file-name sanitiser: names from users and channels made safe to store, show and send back.

A file's name comes from someone else (an upload, a letter's attachment, a Telegram document); the
hub keeps it only as a label — the bytes are stored under their SHA-256 — but shows it, sends it
back in ``Content-Disposition`` and in letters, and a user saves files under it. So: the last path
part only (``/`` and ``\\`` both), no control, zero-width or bidirectional characters (a name that
reads ``exe.txt`` but is ``txt.exe``), none of ``<>:"/\\|?*``, no leading or trailing dots and
spaces, not a Windows device name (``CON``, ``nul.txt``…), at most 200 characters with the extension
kept. Letters and digits of any script stay as they are (NFC).

It lives outside the CRM core so that channel adapters (``hub.mail.parse``) use it without importing
the core's database code; ``hub.crm.attachments`` re-exports it.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

MAX_FILENAME = 200
MAX_EXTENSION = 16  # a longer tail after the last dot is not an extension worth keeping whole

# C0 and C1 controls, DEL, zero-width and bidirectional marks, lone surrogates (undecodable bytes)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSAFE = re.compile(r'[<>:"/\\|?*]')
_EDGES = re.compile(r"^[\s.]+|[\s.]+$")  # leading and trailing dots and (any) spaces
_RESERVED = frozenset({"CON", "PRN", "AUX", "NUL", *(f"COM{n}" for n in range(10)),
                       *(f"LPT{n}" for n in range(10)), "CONIN$", "CONOUT$"})


def sanitize_filename(raw: Any, *, default: str = "file", limit: int = MAX_FILENAME) -> str:
    """``raw`` made a safe name; ``default`` when nothing is left of it (or it is not a string)."""
    name = unicodedata.normalize("NFC", raw if isinstance(raw, str) else "")
    name = re.split(r"[/\\]", name)[-1]
    name = _EDGES.sub("", _UNSAFE.sub("_", _CONTROL.sub("", name)))
    if not name:
        return default
    if name.split(".", 1)[0].rstrip(" ").upper() in _RESERVED:
        name = "_" + name
    if len(name) > limit:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= MAX_EXTENSION and len(ext) < limit - 1:
            name = _EDGES.sub("", stem[: limit - len(ext) - 1]) + "." + ext
        else:
            name = _EDGES.sub("", name[:limit])
    return name or default
