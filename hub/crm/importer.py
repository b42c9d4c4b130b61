"""Importing clients from a CSV file (``crmhub import-clients FILE.csv``).

The file:
- UTF-8 with or without a byte-order mark (a file that is not UTF-8 is read as Windows-1251, the
  encoding Russian Excel saves in); the delimiter is ``,``, ``;`` or a tab, whichever the header
  line uses most;
- a header line naming the columns, in any order, case-insensitive: ``name`` (required), ``inn``,
  ``kpp``, ``phones``, ``emails``, ``manager`` (a user's login), and optionally ``kind``
  (company | person; without it a legal form, KPP or 10-digit INN means a company and a name
  like "Петров Сергей Николаевич" a person), ``full_name``, ``okpo``, ``telegram``, ``tags``,
  ``region``, ``industry``, ``comment``; the Russian headers of a 1C export (Наименование, ИНН,
  КПП, Телефоны, ...) work too;
- several phones, e-mails, Telegram accounts or tags in one cell are separated by ``|``, ``,`` or
  ``;`` (quote the cell when that character is also the file's delimiter).

Every row is created through ``clients.create_client`` (so every rule of the API applies) in its own
transaction: a row is imported whole or not at all. A bad row is reported with its line number in
the file and the reason (``line 4: inn: checksum does not match``) and the import goes on; a
client whose INN is in the database already counts as a bad row, and so does one whose phone or
e-mail is already another client's, contact person's or lead's (``duplicate of client 12 (ООО
«Ромашка»)``): an import never makes duplicates; merge or edit by hand instead.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from hub.crm.errors import DomainError, DuplicateFound, NotFound
from hub.crm.models import Client, User

# Column aliases → the client field (API.md, client create body).
COLUMNS = {
    "name": "name", "наименование": "name", "название": "name", "клиент": "name",
    "kind": "kind", "тип": "kind", "вид": "kind",
    "full_name": "full_name", "полное наименование": "full_name", "полное_наименование": "full_name",
    "inn": "inn", "инн": "inn",
    "kpp": "kpp", "кпп": "kpp",
    "okpo": "okpo", "окпо": "okpo",
    "phones": "phones", "phone": "phones", "телефоны": "phones", "телефон": "phones",
    "emails": "emails", "email": "emails", "e-mail": "emails", "почта": "emails",
    "электронная почта": "emails",
    "telegram": "telegram", "телеграм": "telegram",
    "manager": "manager", "менеджер": "manager", "основной менеджер": "manager",
    "tags": "tags", "теги": "tags",
    "region": "region", "регион": "region",
    "industry": "industry", "отрасль": "industry",
    "comment": "comment", "комментарий": "comment",
}
LIST_FIELDS = ("phones", "emails", "telegram", "tags")
KINDS = {"company": "company", "компания": "company", "юр. лицо": "company", "юрлицо": "company",
         "ип": "company", "person": "person", "физ. лицо": "person", "физлицо": "person",
         "частное лицо": "person"}
LEGAL_FORMS = re.compile(r"^\s*(ООО|АО|ОАО|ЗАО|ПАО|НАО|ИП|НКО|АНО|ГУП|МУП|ФГУП|ТОО|ЧУП)\b", re.I)
_FULL_NAME = re.compile(r"[А-ЯЁA-Z][а-яёa-z]+(?:-[А-ЯЁA-Z][а-яёa-z]+)?(?:\s+[А-ЯЁA-Z][а-яёa-z]+){1,2}")
_SPLIT = re.compile(r"[|,;\n]")
MAX_BYTES = 50 * 1024 * 1024


class ImportFileError(Exception):
    """The file as a whole cannot be imported (unreadable, no header, no name column)."""


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ImportResult:
    total: int = 0
    imported: int = 0
    bad: list[BadRow] = field(default_factory=list)
    client_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "imported": self.imported,
                "bad": [{"line": b.line, "reason": b.reason} for b in self.bad]}


async def default_actor(database: Any, login: str | None = None) -> User:
    """The user an import is done as: ``login``, else the first active administrator, else a
    transient administrator that exists only for this import (a database with no users yet)."""
    async with database.reading() as s:
        if login:
            user: User | None = await s.scalar(select(User).where(User.login == login))
            if user is None:
                raise NotFound(f"no user with login {login!r}")
            return user
        user = await s.scalar(
            select(User).where(User.role == "admin", User.active.is_(True)).order_by(User.id).limit(1)
        )
    return user or User(id=None, login="crmhub", name="crmhub import", role="admin", active=True)


def read_rows(path: str | Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The normalised header and ``(line number, {field: text})`` per non-empty data row."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ImportFileError("file not found") from exc
    except OSError as exc:
        raise ImportFileError(exc.strerror or str(exc)) from exc
    if len(data) > MAX_BYTES:
        raise ImportFileError(f"file is larger than {MAX_BYTES // (1024 * 1024)} MB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1251", errors="replace")
    if "\x00" in text:
        raise ImportFileError("not a text file")
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if not first:
        raise ImportFileError("file is empty")
    delimiter = max((";", ",", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    fields: list[str | None] = []
    rows: list[tuple[int, dict[str, str]]] = []
    last_line = 0
    try:
        for cells in reader:
            start = last_line + 1
            last_line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                header = [c.strip().lower() for c in cells]
                fields = [COLUMNS.get(h) for h in header]
                if "name" not in fields:
                    raise ImportFileError(
                        f"line {start}: no 'name' column in the header (columns: {', '.join(header)})"
                    )
                continue
            row: dict[str, str] = {}
            for name, cell in zip(fields, cells, strict=False):
                if name and cell.strip():
                    row[name] = cell.strip()
            if len(cells) > len(fields) and any(c.strip() for c in cells[len(fields):]):
                row["__extra__"] = "1"
            rows.append((start, row))
    except csv.Error as exc:
        raise ImportFileError(f"line {reader.line_num}: {exc}") from exc
    if header is None:
        raise ImportFileError("file is empty")
    return header, rows


def _client_data(row: dict[str, str], managers: dict[str, int | None]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in row.items():
        if key in ("manager", "__extra__", "kind"):
            continue
        if key in LIST_FIELDS:
            data[key] = [part.strip() for part in _SPLIT.split(value) if part.strip()]
        else:
            data[key] = value
    kind = row.get("kind")
    if kind is not None:
        data["kind"] = KINDS.get(kind.strip().lower(), kind)
    else:
        data["kind"] = _guess_kind(row)
    if row.get("manager"):
        data["manager_id"] = managers[row["manager"].lower()]
    return data


def _guess_kind(row: dict[str, str]) -> str:
    """No ``kind`` column: a legal form, a KPP or a 10-digit INN make a company; a name that reads
    like a person's full name ("Петров Сергей Николаевич") with no INN or a 12-digit one, a person."""
    name, inn = row.get("name", ""), row.get("inn", "")
    if LEGAL_FORMS.match(name) or row.get("kpp") or len(inn) == 10:
        return "company"
    return "person" if _FULL_NAME.fullmatch(name) else "company"


def _reason(exc: DomainError) -> str:
    if isinstance(exc, DuplicateFound):
        return "duplicate of " + ", ".join(f"{d['type']} {d['id']} ({d['name']})" for d in exc.duplicates)
    if exc.fields:
        return "; ".join(f"{name}: {why}" for name, why in exc.fields.items())
    return exc.message


async def import_clients(database: Any, path: str | Path, actor: User, region: str = "RU") -> ImportResult:
    """Import every good row of ``path``; see the module's docstring for the format."""
    _header, rows = read_rows(path)
    from hub.crm import clients

    result = ImportResult(total=len(rows))
    async with database.reading() as s:
        logins = {login.lower(): uid for uid, login in (await s.execute(select(User.id, User.login))).all()}
    for line, row in rows:
        if "__extra__" in row:
            result.bad.append(BadRow(line, "more cells than columns in the header"))
            continue
        if not row.get("name"):
            result.bad.append(BadRow(line, "name: is required"))
            continue
        manager = row.get("manager")
        if manager and manager.lower() not in logins:
            result.bad.append(BadRow(line, f"manager: no user with login {manager!r}"))
            continue
        data = _client_data(row, logins)
        try:
            async with database.transaction() as s:
                inn = row.get("inn")
                if inn:
                    other = await s.scalar(select(Client.id).where(Client.inn == inn).limit(1))
                    if other is not None:
                        raise DomainError(f"inn: a client with INN {inn} exists already (id {other})")
                created = await clients.create_client(s, actor, data, region=region)
        except DomainError as exc:
            result.bad.append(BadRow(line, _reason(exc)))
            continue
        except SQLAlchemyError as exc:  # a constraint the services did not foresee: still this row only
            orig = getattr(exc, "orig", None) or exc
            result.bad.append(BadRow(line, f"not stored: {str(orig).splitlines()[0] if str(orig) else exc}"))
            continue
        result.imported += 1
        result.client_ids.append(int(created["id"]))
    return result
