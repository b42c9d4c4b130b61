"""Lists as files: ``GET /api/v1/{clients|leads|deals|tasks|calls}/export?format=xlsx|csv&<the list's
filters>`` — every row the list would page through (what the caller may see, filtered the same way),
with column names in the reader's language and times in the server's time zone.

CSV is written for Russian Excel: UTF-8 with a byte-order mark, ``;`` between cells. XLSX (openpyxl,
write-only) keeps numbers and times typed, so a manager sorts and sums them in the spreadsheet.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from openpyxl import Workbook

from hub.crm.errors import ValidationError
from hub.texts import N_, translate
from hub.web import i18n
from hub.web.keys import CONFIG, DB, USER
from hub.web.routing import BINARY, Param, Schema

FORMATS = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
           "csv": "text/csv; charset=utf-8"}
FORMAT_PARAM = Param("format", {"enum": list(FORMATS)}, "the file's format (xlsx unless told)")
ANSWERS: dict[int, Schema] = {200: {"description": "The file (Content-Disposition: attachment)", "content": {
    media.split(";")[0]: {"schema": BINARY} for media in FORMATS.values()}}}
PAGE = 200
MAX_ROWS = 100_000  # a file of more would not open in a spreadsheet comfortably; filter first

Cell = str | int | float | datetime | date | None
Lister = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Column:
    label: str  # a msgid
    value: Callable[[dict[str, Any]], Any]
    words: dict[str, str] | None = None  # a code's msgid (a call's status, a client's kind)


def ref_name(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda row: (row.get(key) or {}).get("name", "")


def joined(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda row: ", ".join(str(v) for v in row.get(key) or [])


def field(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda row: row.get(key)


def moment(key: str) -> Callable[[dict[str, Any]], Any]:
    """An ISO time of the resource: a datetime, put in the server's zone by ``_cell``."""
    def read(row: dict[str, Any]) -> Any:
        value = row.get(key)
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None
    return read


CLIENTS = (
    Column(N_("Name"), field("name")),
    Column(N_("Kind"), field("kind"), {"company": N_("Company"), "person": N_("Person")}),
    Column(N_("INN"), field("inn")),
    Column(N_("KPP"), field("kpp")), Column(N_("Phones"), joined("phones")),
    Column(N_("E-mails"), joined("emails")), Column(N_("Manager"), ref_name("manager")),
    Column(N_("Region"), field("region")), Column(N_("Industry"), field("industry")),
    Column(N_("Tags"), joined("tags")), Column(N_("Date added"), moment("created_at")),
)
LEADS = (
    Column(N_("Name"), field("name")), Column(N_("Source"), field("source")),
    Column(N_("Phones"), joined("phones")), Column(N_("E-mails"), joined("emails")),
    Column(N_("Manager"), ref_name("manager")),
    Column(N_("Unsorted"), lambda r: "✓" if r.get("unsorted") else ""),
    Column(N_("Date added"), moment("created_at")),
)
DEALS = (
    Column(N_("Deal"), field("title")),
    Column(N_("Client"), lambda r: (r.get("client") or r.get("lead") or {}).get("name", "")),
    Column(N_("Stage"), lambda r: (r.get("stage") or {}).get("name", "")),
    Column(N_("Amount"), field("amount")),
    Column(N_("Currency"), field("currency")), Column(N_("Responsible"), ref_name("responsible")),
    Column(N_("Next interaction"), moment("next_interaction_at")),
    Column(N_("What to do"), field("next_interaction_note")), Column(N_("Source"), field("source")),
    Column(N_("Tags"), joined("tags")), Column(N_("Created"), moment("created_at")),
)
TASKS = (
    Column(N_("Subject"), field("subject")), Column(N_("Due"), moment("due_at")),
    Column(N_("Assignee"), ref_name("assignee")), Column(N_("Client"), ref_name("client")),
    Column(N_("Deal"), ref_name("deal")), Column(N_("Done"), moment("completed_at")),
    Column(N_("Created"), moment("created_at")),
)
CALLS = (
    Column(N_("Start"), moment("started_at")),
    Column(N_("Direction"), field("direction"), {
        "inbound": N_("Incoming call"), "outbound": N_("Outgoing call"), "internal": N_("Internal call")}),
    Column(N_("Status"), field("status"), {"answered": N_("answered"), "missed": N_("missed"),
                                           "abandoned": N_("abandoned"), "busy": N_("busy"),
                                           "failed": N_("failed")}),
    Column(N_("Number"), field("external_number")),
    Column(N_("Agent"), ref_name("agent")), Column(N_("Waiting, s"), field("wait_seconds")),
    Column(N_("Talk, s"), field("talk_seconds")),
)


def export_format(request: web.Request) -> str:
    chosen = request.query.get("format", "xlsx")
    if chosen not in FORMATS:
        raise ValidationError({"format": "must be xlsx or csv"})
    return chosen


async def every_row(request: web.Request, lister: Lister, filters: dict[str, Any]) -> list[dict[str, Any]]:
    """The list's pages, one after another, in one read (so the file is one consistent snapshot)."""
    rows: list[dict[str, Any]] = []
    async with request.app[DB].reading() as s:
        async for item in _pages(lister, s, request, filters):
            rows.append(item)
            if len(rows) > MAX_ROWS:
                raise ValidationError({"format": f"more than {MAX_ROWS} rows: narrow the filter"})
    return rows


async def _pages(lister: Lister, s: Any, request: web.Request,
                 filters: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    cursor = None
    while True:
        page = await lister(s, request[USER], **filters, cursor=cursor, limit=PAGE)
        for item in page.items:
            yield item
        cursor = page.next_cursor
        if not cursor:
            return


def _cell(column: Column, row: dict[str, Any], zone: ZoneInfo, language: str) -> Cell:
    value = column.value(row)
    if column.words is not None and value in column.words:
        return translate(language, column.words[value])
    if isinstance(value, datetime):
        return value.astimezone(zone).replace(tzinfo=None)
    if value is None or isinstance(value, str | int | float | date):
        return value
    return str(value)


def table(columns: Sequence[Column], rows: list[dict[str, Any]], zone: ZoneInfo,
          language: str) -> list[list[Cell]]:
    return [[_cell(c, row, zone, language) for c in columns] for row in rows]


def to_csv(header: list[str], cells: list[list[Cell]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    for row in cells:
        writer.writerow(["" if v is None else v.strftime("%d.%m.%Y %H:%M") if isinstance(v, datetime)
                         else v for v in row])
    return out.getvalue().encode("utf-8-sig")


def to_xlsx(header: list[str], cells: list[list[Cell]], title: str) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title[:31])
    sheet.append(header)
    for row in cells:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def respond(request: web.Request, name: str, columns: Sequence[Column], lister: Lister,
                  filters: dict[str, Any]) -> web.Response:
    chosen = export_format(request)
    rows = await every_row(request, lister, filters)
    language = i18n.context(request)["lang"]
    header = [translate(language, c.label) for c in columns]
    cells = table(columns, rows, ZoneInfo(request.app[CONFIG].server.timezone), language)
    body = to_xlsx(header, cells, name) if chosen == "xlsx" else to_csv(header, cells)
    day = datetime.now(ZoneInfo(request.app[CONFIG].server.timezone)).date().isoformat()
    return web.Response(body=body, content_type=FORMATS[chosen].split(";")[0], charset=(
        "utf-8" if chosen == "csv" else None), headers={
        "Content-Disposition": f'attachment; filename="{name}-{day}.{chosen}"'})
