"""The call journal: list and read calls, and play their recordings (HTTP Range for seeking)."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path
from typing import Any, Final

import aiohttp
from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.helpers import content_disposition_header
from multidict import CIMultiDict

from hub.crm import call_intake as intake
from hub.crm import calls, click_to_call
from hub.crm.models import CALL_DIRECTIONS
from hub.web import export
from hub.web.api import schemas
from hub.web.api.common import ok, paging
from hub.web.errors import (
    error_response,
    json_body,
    optional_json_body,
    path_id,
    query_choice,
    query_datetime,
    query_int,
    query_text,
)
from hub.web.keys import CALL_SETTINGS, CONFIG, DB, DIALER, RECORDINGS_HTTP, USER
from hub.web.routing import BINARY, PAGING, Param, Routes, file_answers, page_of, ref

routes = Routes("calls")

RECORDING_MISSING = "recording_missing"
LEAD_IN = schemas.obj({"name": {**schemas.TEXT, "description": "defaults to the number"}})
LEAD_OUT = schemas.obj({"lead": ref("Lead"), "call": ref("Call")}, ("lead", "call"))
ORIGINATE_IN = schemas.obj(
    {"number": {**schemas.TEXT, "description": "the number to call, any usual format"}}, ("number",))
ORIGINATE_OUT = schemas.obj({
    "action_id": {**schemas.TEXT, "description": "the Originate's ActionID (the call's events carry it)"},
    "extension": {**schemas.TEXT, "description": "the caller's phone, rung first"},
    "number": {**schemas.TEXT, "description": "the number dialled once it answers (E.164)"},
}, ("action_id", "extension", "number"))


CALL_PARAMS = (
    Param("status", description="answered, missed, abandoned, busy or failed; "
                                "several comma-separated (missed,abandoned)"),
    Param("direction", {"enum": list(CALL_DIRECTIONS)}, "inbound, outbound or internal"),
    Param("agent", "integer", "the agent's user id"),
    Param("since", "date-time", "calls started at or after"),
    Param("until", "date-time", "calls started before"),
)


@routes.get("/api/v1/calls", "The call journal, newest first (finished calls the caller may see)",
            response=page_of("Call"), errors=(401, 422), params=(*CALL_PARAMS, *PAGING))
async def list_calls(request: web.Request) -> web.Response:
    async with request.app[DB].reading() as s:
        page = await calls.list_calls(s, request[USER], **_call_filters(request), **paging(request))
    return ok(page)


def _call_filters(request: web.Request) -> dict[str, Any]:
    return {
        "status": query_text(request, "status", max_len=100),
        "direction": query_choice(request, "direction", CALL_DIRECTIONS),
        "agent_id": query_int(request, "agent"),
        "since": query_datetime(request, "since"),
        "until": query_datetime(request, "until"),
    }


@routes.get("/api/v1/calls/export", "The call journal as a file, filtered as the journal is",
            response=BINARY, content_type=export.FORMATS["xlsx"], responses=export.ANSWERS, errors=(401, 422),
            params=(*CALL_PARAMS, export.FORMAT_PARAM))
async def export_calls(request: web.Request) -> web.Response:
    return await export.respond(request, "calls", export.CALLS, calls.list_calls, _call_filters(request))


@routes.get("/api/v1/calls/{id}", "Read a call", response=ref("Call"), errors=(401, 404))
async def get_call(request: web.Request) -> web.Response:
    call_id = path_id(request)
    async with request.app[DB].reading() as s:
        return ok(await calls.get_call(s, request[USER], call_id))


@routes.get("/api/v1/calls/{id}/recording",
            "The call's recording, with HTTP Range support (who may see the call); a call without a "
            "recording or whose file is gone answers 404 with the code recording_missing",
            response=BINARY, content_type="audio/*", errors=(401, 404), responses=file_answers("audio/*"))
async def call_recording(request: web.Request) -> web.StreamResponse:
    return await _recording(request, path_id(request), 1)


@routes.get("/api/v1/calls/{id}/recordings/{n}",
            "The call's recording number n (from 1, in the order they were made: a transferred call has "
            "one per agent leg; the call's recordings list them), as /recording: HTTP Range, who may see "
            "the call, 404 recording_missing when there is no such recording or its file is gone",
            response=BINARY, content_type="audio/*", errors=(401, 404), responses=file_answers("audio/*"))
async def call_recording_n(request: web.Request) -> web.StreamResponse:
    return await _recording(request, path_id(request), path_id(request, "n"))


async def _recording(request: web.Request, call_id: int, number: int) -> web.StreamResponse:
    """The call's recording ``number`` (from 1): from ``recordings_dir``, else from ``recordings_url``."""
    asterisk = request.app[CONFIG].asterisk
    if not asterisk.recordings_dir and asterisk.recordings_url:
        return await _proxied_recording(request, call_id, number)
    async with request.app[DB].reading() as s:
        path = await calls.recording_path(s, request[USER], call_id, asterisk.recordings_dir, number)
    if path is None:
        return error_response(404, RECORDING_MISSING, "the call has no recording, or its file is missing")
    try:
        size = path.stat().st_size
    except OSError:
        return error_response(404, RECORDING_MISSING, "the call has no recording, or its file is missing")
    chosen = parse_range(request.headers.get(hdrs.RANGE), size) if request.method == "GET" else None
    # inline (the page's player) under its own name when saved; never shown as a page of the hub
    disposition = content_disposition_header("inline", filename=path.name)
    return _RecordingFile(path, chosen, size,
                          headers={"Cache-Control": "private, no-store", "Accept-Ranges": "bytes",
                                   hdrs.CONTENT_DISPOSITION: disposition})


# --- HTTP Range (RFC 9110 §14) -----------------------------------------------------------------------

class Unsatisfiable:
    """parse_range's answer for a valid byte range that selects nothing: 416, ``bytes */<size>``."""

    def __repr__(self) -> str:
        return "UNSATISFIABLE"


UNSATISFIABLE: Final = Unsatisfiable()
_INT_RANGE = re.compile(r"([0-9]+)-([0-9]*)", re.ASCII)
_SUFFIX_RANGE = re.compile(r"-([0-9]+)", re.ASCII)


def _number(digits: str, cap: int) -> int:
    """The decimal value, at most ``cap`` (no int() of thousands of digits: Python refuses them)."""
    digits = digits.lstrip("0") or "0"
    return cap if len(digits) > len(str(cap)) else min(int(digits), cap)


def _less(a: str, b: str) -> bool:
    """a < b for decimal digit strings of any length."""
    a, b = a.lstrip("0") or "0", b.lstrip("0") or "0"
    return (len(a), a) < (len(b), b)


def range_spec(header: str | None) -> tuple[str, str] | None:
    """The one byte range a Range header asks for, as its two digit strings (first-pos and last-pos, or
    "" and suffix-length), when it is valid and single; None when it is absent, invalid (another unit, bad
    syntax, last-pos before first-pos) or asks for several ranges — all of which a server ignores."""
    if header is None:
        return None
    unit, eq, ranges = header.strip(" \t").partition("=")
    if not eq or unit.lower() != "bytes":
        return None
    specs = [spec.strip(" \t") for spec in ranges.split(",")]
    specs = [spec for spec in specs if spec]  # a list may carry empty elements (RFC 9110 §5.6.1)
    if len(specs) != 1:
        return None
    if match := _INT_RANGE.fullmatch(specs[0]):
        first, last = match.groups()
        return None if last and _less(last, first) else (first, last)
    if match := _SUFFIX_RANGE.fullmatch(specs[0]):
        return "", match.group(1)
    return None


def parse_range(header: str | None, size: int) -> tuple[int, int] | Unsatisfiable | None:
    """What a Range header asks of a representation of ``size`` bytes: (first, last) byte positions, both
    inclusive and inside it, for 206; UNSATISFIABLE for 416 (first-pos at or past the end, a suffix of 0
    bytes); None when the header is to be ignored (absent, invalid, several ranges; and any range of an
    empty file, which has no bytes to send) and the whole representation is the answer."""
    spec = range_spec(header)
    if spec is None:
        return None
    first, last = spec
    if not first:  # suffix-range: the last N bytes, or all of them when N is more
        if not last.strip("0"):
            return UNSATISFIABLE
        return (size - _number(last, size), size - 1) if size else None
    start = _number(first, size)
    if start >= size:
        return UNSATISFIABLE
    return start, (_number(last, size - 1) if last else size - 1)


def _aiohttp_range(chosen: tuple[int, int] | Unsatisfiable | None, size: int) -> str | None:
    """The chosen range in the one form aiohttp's FileResponse reads right (``request.http_range``)."""
    if chosen is None:
        return None
    if isinstance(chosen, Unsatisfiable):
        return f"bytes={size}-"  # FileResponse answers 416 with Content-Range: bytes */<size>
    return f"bytes={chosen[0]}-{chosen[1]}"


class _RecordingFile(web.FileResponse):
    """A FileResponse that sees only the Range parse_range chose, never one it decided to ignore (aiohttp
    answers 416 to those, and a whole-file 206 to ``bytes=-0``). Preconditions, If-Range and the rest are
    FileResponse's own."""

    def __init__(self, path: Path, chosen: tuple[int, int] | Unsatisfiable | None, size: int,
                 headers: dict[str, str]) -> None:
        super().__init__(path, headers=headers)
        self._range = _aiohttp_range(chosen, size)

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if request.headers.get(hdrs.RANGE) != self._range:
            headers = CIMultiDict(request.headers)
            headers.popall(hdrs.RANGE, None)
            if self._range is not None:
                headers[hdrs.RANGE] = self._range
            request = request.clone(headers=headers)
        return await super().prepare(request)


# what the recording server's answer may pass on to the browser
PROXIED_HEADERS = ("Content-Type", "Content-Length", "Content-Range", "Content-Encoding", "Accept-Ranges",
                   "Last-Modified", "ETag")


async def _proxied_recording(request: web.Request, call_id: int, number: int) -> web.StreamResponse:
    """The recording streamed from ``recordings_url`` + "/" + its base name, a valid single Range (and its
    If-Range) passed through."""
    async with request.app[DB].reading() as s:
        name = await calls.recording_name(s, request[USER], call_id, number)
    if name is None:
        return error_response(404, RECORDING_MISSING, "the call has no recording")
    url = request.app[CONFIG].asterisk.recordings_url.rstrip("/") + "/" + urllib.parse.quote(name)
    # the Range goes upstream only when valid and single (with its If-Range); otherwise the whole file.
    # A suffix of 0 bytes is unsatisfiable whatever the size: the whole file's length makes the 416
    # (unless an If-Range asks, which we cannot judge here: then the Range is ignored, as one may)
    spec = range_spec(request.headers.get(hdrs.RANGE)) if request.method == "GET" else None
    headers: dict[str, str] = {}
    empty_suffix = spec is not None and not spec[0] and not spec[1].strip("0")
    if spec is not None and not empty_suffix:
        first, last = (digits.lstrip("0") or "0" if digits else "" for digits in spec)
        headers[hdrs.RANGE] = f"bytes={first}-{last}"
        if hdrs.IF_RANGE in request.headers:
            headers[hdrs.IF_RANGE] = request.headers[hdrs.IF_RANGE]
    try:
        async with request.app[RECORDINGS_HTTP].get(url, headers=headers) as upstream:
            if (empty_suffix and upstream.status == 200 and hdrs.IF_RANGE not in request.headers
                    and (length := upstream.headers.get(hdrs.CONTENT_LENGTH, "")).isdecimal()):
                return web.Response(status=416, headers={
                    hdrs.CONTENT_RANGE: f"bytes */{int(length)}", "Cache-Control": "private, no-store"})
            if upstream.status == 416:
                return web.Response(status=416, headers={
                    k: upstream.headers[k] for k in ("Content-Range",) if k in upstream.headers})
            if upstream.status not in (200, 206):
                return error_response(404, RECORDING_MISSING,
                                      f"the recording server answered {upstream.status} for the file")
            response = web.StreamResponse(status=upstream.status, headers={
                **{k: upstream.headers[k] for k in PROXIED_HEADERS if k in upstream.headers},
                "Cache-Control": "private, no-store",
                hdrs.CONTENT_DISPOSITION: content_disposition_header("inline", filename=name)})
            response.headers.setdefault("Accept-Ranges", "bytes")
            await response.prepare(request)
            async for chunk in upstream.content.iter_chunked(64 * 1024):
                await response.write(chunk)
            await response.write_eof()
            return response
    except (aiohttp.ClientError, TimeoutError) as exc:
        return error_response(404, RECORDING_MISSING, f"the recording server is out of reach: {exc}")


@routes.post("/api/v1/calls/{id}/lead",
             "Make the unknown caller of this call a lead (Unsorted, with the number; the call goes into "
             "its timeline) — the screen-pop's button when unknown_caller is \"ask\"",
             request=LEAD_IN, response=LEAD_OUT, status=201, errors=(400, 401, 404, 409, 422))
async def lead_from_call(request: web.Request) -> web.Response:
    call_id = path_id(request)
    data = await optional_json_body(request)
    async with request.app[DB].transaction() as s:
        result = await intake.lead_from_call(s, request[USER], call_id, data, request.app[CALL_SETTINGS])
    return ok(result, 201)


@routes.post("/api/v1/calls/originate",
             "Click-to-call: ring the current user's (first) extension, then dial the number; the call is "
             "tracked as outbound. 422 when the user has no extension or the number is not one; 503 "
             "(telephony_unavailable) while Asterisk is not connected; 502 (originate_failed) when Asterisk "
             "refuses the Originate",
             request=ORIGINATE_IN, response=ORIGINATE_OUT, status=202, errors=(400, 401, 422, 502, 503))
async def originate(request: web.Request) -> web.Response:
    data = await json_body(request)
    result = await click_to_call.place_call(request.app[DB], request.app.get(DIALER), request[USER],
                                            data.get("number"), request.app[CONFIG].phones.default_region)
    return ok(result, 202)
