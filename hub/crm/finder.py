"""One search over clients, contacts, leads, deals, tasks and the timeline's messages, letters, calls and
notes — what the header's search box and ``GET /api/v1/search`` answer.

It reads ``search_documents`` (kept by triggers, migration 0013) through the dialect's index: SQLite
FTS5 (``search_words`` for words, ``search_grams`` — trigrams — for fragments), PostgreSQL full text
(``russian``) and ``pg_trgm``. Each kind is one id range of the documents, searched newest first and
filtered by the same access rules as the lists (``hub.crm.access``): one finds only what one may open.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    text,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import access
from hub.crm import search_query as sq
from hub.crm.errors import ValidationError
from hub.crm.models import (
    Client,
    ContactPerson,
    ContactPoint,
    Deal,
    Lead,
    SearchDocument,
    Task,
    TimelineEntry,
    User,
)

ENTRY_KINDS = ("message", "letter", "call", "note")
DEFAULT_LIMIT = 5
MAX_LIMIT = 50
SNIPPET = 120  # characters around what matched
# PostgreSQL: how many of the newest matches of a kind are checked against the access rule (see
# docs/decisions.md: a word in tens of thousands of letters costs a full read of them otherwise)
PG_CANDIDATES = 1000

_SOURCES: dict[str, Any] = {"client": Client, "contact": ContactPerson, "lead": Lead, "deal": Deal,
                            "task": Task, **dict.fromkeys(ENTRY_KINDS, TimelineEntry)}
_WORDS = table("search_words", column("rowid"))
_GRAMS = table("search_grams", column("rowid"))


@dataclass(frozen=True)
class Hit:
    kind: str
    id: int
    title: str
    snippet: str
    url: str


def parse_kinds(value: str | None) -> tuple[str, ...]:
    """``kind``: one kind or several, comma-separated; none: every kind."""
    if not value:
        return sq.KINDS
    kinds = tuple(k.strip() for k in value.split(",") if k.strip())
    unknown = [k for k in kinds if k not in sq.KINDS]
    if unknown or not kinds:
        raise ValidationError({"kind": f"must be one of: {', '.join(sq.KINDS)}"})
    return tuple(k for k in sq.KINDS if k in kinds)


def check_text(q: str | None) -> str:
    if q is None:
        raise ValidationError({"q": "is required"})
    if len(q) > sq.MAX_QUERY:
        raise ValidationError({"q": f"must be at most {sq.MAX_QUERY} characters"})
    return q


async def search(session: AsyncSession, user: User, q: str | None, kinds: Iterable[str] = sq.KINDS,
                 limit: int = DEFAULT_LIMIT) -> list[Hit]:
    """What ``q`` finds that ``user`` may open: up to ``limit`` of each kind, newest first, in the order
    of ``search_query.KINDS``."""
    query = sq.parse(check_text(q))
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError({"limit": f"must be between 1 and {MAX_LIMIT}"})
    if query.empty:
        return []
    kinds = tuple(kinds)
    rules = None if await access.sees_all(session, user) else await _Rules.of(session, user)
    parts = []
    for kind in kinds:
        visible = true() if rules is None else rules.visible(kind)
        parts.extend(_matching(session, kind, query, visible, limit))
    if not parts:
        return []
    if session.get_bind().dialect.name == "postgresql":
        # Each kind's matches (a few thousand at most) join their rows one by one through the primary
        # key: the planner, overestimating a prefix query's matches, would hash-join a full scan of
        # the table (a million entries) or start parallel workers — hundreds of ms for five rows.
        for setting in ("max_parallel_workers_per_gather = 0", "enable_hashjoin = off",
                        "enable_mergejoin = off"):
            await session.execute(text(f"SET LOCAL {setting}"))
    found: dict[str, set[int]] = {}
    for row in (await session.execute(union_all(*parts))).all():
        found.setdefault(str(row[0]), set()).add(int(row[1]))
    chosen = {kind: [doc_id - sq.id_range(kind)[0] for doc_id in sorted(found[kind], reverse=True)[:limit]]
              for kind in kinds if kind in found}
    described = await _entries(session, {k: ids for k, ids in chosen.items() if k in ENTRY_KINDS}, query)
    for kind, ids in chosen.items():
        if kind not in ENTRY_KINDS:
            described.extend(await _describe(session, kind, ids, query))
    order = {kind: n for n, kind in enumerate(kinds)}
    return sorted(described, key=lambda hit: order[hit.kind])  # (stable: each kind newest first)


# --- which documents match ----------------------------------------------------------------------------

def _matching(session: AsyncSession, kind: str, query: sq.Query, visible: ColumnElement[bool],
              limit: int) -> list[Select[Any]]:
    """SELECTs of (kind, document id) of ``kind`` that match and are visible, newest first (one per
    index used; all of them go to the database in one statement)."""
    source = _SOURCES[kind]
    if kind in ENTRY_KINDS and not any(c.isdigit() or c in "@." for c in query.text):
        # an entry's handles are its address or number only: words need no look there
        query = replace(query, fragment=None)
    label = literal(kind).label("kind")
    if session.get_bind().dialect.name == "postgresql":
        matches = _pg_statement(kind, query)
        if matches is None:
            return []
        # The newest CANDIDATES matches (ordered by ``id + 0``, not by walking the primary key
        # backwards until enough match: the planner overestimates a prefix query's matches), then their
        # rows and the access rule one by one.
        candidates = (matches.add_columns(SearchDocument.id, SearchDocument.ref_id)
                      .order_by((SearchDocument.id + 0).desc()).limit(PG_CANDIDATES).subquery())
        ranked = (select(label, candidates.c.id.label("doc_id"))
                  .join(source, source.id == candidates.c.ref_id)
                  .where(visible).order_by(candidates.c.id.desc()).limit(limit).subquery())
        return [select(ranked.c.kind, ranked.c.doc_id)]
    low, high = sq.id_range(kind)
    parts = []
    for index, match in ((_WORDS, sq.fts5_match(query)), (_GRAMS, sq.fts5_fragment(query))):
        if match is None:
            continue
        # the FTS table drives (newest first, stopping at ``limit``); the source row and the rule follow
        ranked = (select(label, SearchDocument.id.label("doc_id"))
                  .select_from(index.join(SearchDocument, SearchDocument.id == index.c.rowid))
                  .join(source, source.id == SearchDocument.ref_id)
                  .where(literal_column(index.name).op("MATCH")(match), index.c.rowid.between(low, high),
                         visible)
                  .order_by(index.c.rowid.desc()).limit(limit).subquery())
        parts.append(select(ranked.c.kind, ranked.c.doc_id))
    return parts


def _pg_statement(kind: str, query: sq.Query) -> Select[Any] | None:
    russian: ColumnElement[Any] = literal_column("'russian'::regconfig")
    conditions: list[ColumnElement[bool]] = []
    if (ts := sq.tsquery(query)) is not None:
        words = func.to_tsvector(russian, SearchDocument.words)
        conditions.append(words.op("@@")(func.to_tsquery(russian, ts)))
    if (like := sq.like_fragment(query)) is not None:
        conditions.append(SearchDocument.handles.ilike(like, escape="\\"))
    if not conditions:
        return None
    # the kind as a literal: each kind's full-text index is partial (WHERE kind = '…')
    return select().where(SearchDocument.kind == literal_column(f"'{kind}'"), or_(*conditions))


@dataclass(frozen=True)
class _Rules:
    """The access rules of one user who does not see everything, as SQL conditions (read once)."""

    clients: ColumnElement[bool]
    leads: ColumnElement[bool]
    deals: ColumnElement[bool]
    tasks: ColumnElement[bool]

    @classmethod
    async def of(cls, session: AsyncSession, user: User) -> _Rules:
        return cls(await access.clients_filter(session, user), await access.leads_filter(session, user),
                   await access.deals_filter(session, user), await access.tasks_filter(session, user))

    def visible(self, kind: str) -> ColumnElement[bool]:
        """The rule for a thing of ``kind`` (its table is joined)."""
        if kind == "client":
            return self.clients
        if kind == "contact":
            return select(Client.id).where(Client.id == ContactPerson.client_id, self.clients).exists()
        if kind in ("lead", "deal", "task"):
            return {"lead": self.leads, "deal": self.deals, "task": self.tasks}[kind]
        # an entry: by its deal when on one (as timeline.get_entry), else by its client, else by its lead
        entry = TimelineEntry
        on_deal = select(Deal.id).where(Deal.id == entry.deal_id, self.deals).exists()
        on_client = select(Client.id).where(Client.id == entry.client_id, self.clients).exists()
        on_lead = select(Lead.id).where(Lead.id == entry.lead_id, self.leads).exists()
        return or_(and_(entry.deal_id.is_not(None), on_deal),
                   and_(entry.deal_id.is_(None), entry.client_id.is_not(None), on_client),
                   and_(entry.deal_id.is_(None), entry.client_id.is_(None), on_lead))


# --- what a hit shows ---------------------------------------------------------------------------------

async def _describe(session: AsyncSession, kind: str, ids: list[int], query: sq.Query) -> list[Hit]:
    points = await _points(session, kind, ids)
    if kind == "client":
        rows = {r.id: r for r in await session.scalars(select(Client).where(Client.id.in_(ids)))}
        return [Hit(kind, i, rows[i].name,
                    _point(points.get(i, []), query) or rows[i].full_name or rows[i].inn or "",
                    f"/clients/{i}") for i in ids if i in rows]
    if kind == "contact":
        found = (await session.execute(
            select(ContactPerson.id, ContactPerson.name, ContactPerson.position, ContactPerson.client_id,
                   Client.name)
            .join(Client, Client.id == ContactPerson.client_id).where(ContactPerson.id.in_(ids)))).all()
        by_id = {r[0]: r for r in found}
        return [Hit(kind, i, by_id[i][1], _point(points.get(i, []), query)
                    or ", ".join(p for p in (by_id[i][4], by_id[i][2]) if p),
                    f"/clients/{by_id[i][3]}") for i in ids if i in by_id]
    if kind == "lead":
        leads = {r.id: r for r in await session.scalars(select(Lead).where(Lead.id.in_(ids)))}
        return [Hit(kind, i, leads[i].name,
                    _point(points.get(i, []), query) or _excerpt(leads[i].comment, query),
                    f"/leads/{i}") for i in ids if i in leads]
    if kind == "deal":
        deals = (await session.execute(
            select(Deal.id, Deal.title, Client.name, Lead.name).outerjoin(Client, Client.id == Deal.client_id)
            .outerjoin(Lead, Lead.id == Deal.lead_id).where(Deal.id.in_(ids)))).all()
        by_deal = {r[0]: r for r in deals}
        return [Hit(kind, i, by_deal[i][1], by_deal[i][2] or by_deal[i][3] or "", f"/deals/{i}")
                for i in ids if i in by_deal]
    tasks = {r.id: r for r in await session.scalars(select(Task).where(Task.id.in_(ids)))}
    return [Hit(kind, i, tasks[i].subject, _excerpt(tasks[i].description, query), f"/tasks/{i}")
            for i in ids if i in tasks]


async def _points(session: AsyncSession, kind: str, ids: list[int]) -> dict[int, list[ContactPoint]]:
    owner = {"client": ContactPoint.client_id, "contact": ContactPoint.contact_id,
             "lead": ContactPoint.lead_id}.get(kind)
    if owner is None:
        return {}
    found: dict[int, list[ContactPoint]] = {}
    for point in await session.scalars(select(ContactPoint).where(owner.in_(ids)).order_by(ContactPoint.id)):
        found.setdefault(getattr(point, owner.key), []).append(point)
    return found


def _point(points: list[ContactPoint], query: sq.Query) -> str:
    """The phone or e-mail the fragment was found in (as the person wrote it), else ''."""
    if query.fragment is None:
        return ""
    for point in points:
        value = point.value
        if point.kind == "phone":
            digits = value.lstrip("+")
            national = "8" + digits[1:] if value.startswith("+7") else ""
            if query.fragment in digits or (national and query.fragment in national):
                return point.raw or value
        elif query.fragment in sq.fold(value):
            return value
    return ""


async def _entries(session: AsyncSession, chosen: dict[str, list[int]], query: sq.Query) -> list[Hit]:
    """The hits of the timeline's kinds (``chosen``: kind → entry ids), read together."""
    wanted = [(kind, i) for kind, ids in chosen.items() for i in ids]
    if not wanted:
        return []
    entries = {e.id: e for e in await session.scalars(
        select(TimelineEntry).where(TimelineEntry.id.in_([i for _, i in wanted])))}
    names = await _entry_places(session, list(entries.values()))
    hits = []
    for kind, i in wanted:
        entry = entries.get(i)
        if entry is None:
            continue
        place, url = names.get(i, ("", "/"))
        subject = str((entry.payload or {}).get("subject") or "")
        text = " — ".join(p for p in (subject, entry.text) if p)
        address = str((entry.payload or {}).get("address") or "")
        hits.append(Hit(kind, i, place, _excerpt(text, query) or address, f"{url}#entry-{i}"))
    return hits


async def _entry_places(session: AsyncSession,
                        entries: list[TimelineEntry]) -> dict[int, tuple[str, str]]:
    """entry id → (the name of what it is on, its card's URL): the deal, else the client, else the lead."""
    deals = dict((await session.execute(select(Deal.id, Deal.title).where(
        Deal.id.in_({e.deal_id for e in entries if e.deal_id is not None})))).all())
    clients = dict((await session.execute(select(Client.id, Client.name).where(
        Client.id.in_({e.client_id for e in entries if e.client_id is not None})))).all())
    leads = dict((await session.execute(select(Lead.id, Lead.name).where(
        Lead.id.in_({e.lead_id for e in entries if e.lead_id is not None})))).all())
    places = {}
    for e in entries:
        if e.deal_id is not None:
            places[e.id] = (deals.get(e.deal_id, ""), f"/deals/{e.deal_id}")
        elif e.client_id is not None:
            places[e.id] = (clients.get(e.client_id, ""), f"/clients/{e.client_id}")
        elif e.lead_id is not None:
            places[e.id] = (leads.get(e.lead_id, ""), f"/leads/{e.lead_id}")
    return places


def _excerpt(text: str, query: sq.Query) -> str:
    """``SNIPPET`` characters of ``text`` around the first thing the query matched (or its start)."""
    text = " ".join((text or "").split())
    if len(text) <= SNIPPET:
        return text
    folded = sq.fold(text)
    needles = [alt for w in query.words for alt in sq.alternatives(w, stem=True)]
    if query.fragment:
        needles.append(query.fragment)
    positions = [p for p in (folded.find(n) for n in needles if n) if p >= 0]
    start = max(0, min(positions) - SNIPPET // 3) if positions else 0
    end = min(len(text), start + SNIPPET)
    return ("…" if start else "") + text[start:end].strip() + ("…" if end < len(text) else "")
