"""The one serialiser: typed structures (``hub.crm.resources``) and plain values to JSON.

``plain`` gives a structure's JSON-ready builtins (dicts, lists, strings, numbers), which events,
pages and tests read; ``to_json`` gives the bytes that the API and the event stream send. Values JSON
has no type for (a ``Decimal``, a ``datetime``, a ``set``) are written as msgspec writes them: a
string, an RFC 3339 string, an array.
"""

from __future__ import annotations

from typing import Any

import msgspec

_encoder = msgspec.json.Encoder(enc_hook=str)


def plain(resource: msgspec.Struct) -> dict[str, Any]:
    built: dict[str, Any] = msgspec.to_builtins(resource, enc_hook=str)
    return built


def to_json(value: Any) -> bytes:
    return _encoder.encode(value)
