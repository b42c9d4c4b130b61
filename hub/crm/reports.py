"""Reports (отчёты): the sales funnel of a pipeline and the dashboard widgets, aggregated in SQL.

``funnel`` looks at the cohort of deals created in ``[since, until)`` and follows their whole history:
where they are now (count, expected revenue), how far they got ("reached": in a stage or past it,
from the ``stage_change`` entries' ``from_stage`` / ``to_stage`` ids plus the current stage), the
conversion from each active stage to the next, won / lost, loss reasons, and the average time a deal
spends in each active stage. ``widgets`` counts what happened in a period against the previous
period of the same length.

Both read only (no flush, no events) and return plain dicts; money in roubles, times as ISO strings.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Result,
    and_,
    case,
    distinct,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import access
from hub.crm.deals import roubles
from hub.crm.errors import NotFound, ValidationError
from hub.crm.models import (
    Client,
    Deal,
    Lead,
    LossReason,
    Pipeline,
    Stage,
    Task,
    TimelineEntry,
    User,
    UTCDateTime,
    utcnow,
)
from hub.crm.validate import iso, parse_datetime, small_int

# "Reached everything": the position a won deal counts as, above every real stage position.
_PAST_ALL = 2**31 - 1
MAX_PERIOD = timedelta(days=3660)
MAX_ID = 2**31 - 1  # users and pipelines have 32-bit keys


# --- arguments -----------------------------------------------------------------------------------------

def _moment(errors: dict[str, str], name: str, value: Any) -> datetime | None:
    """A datetime (naive → UTC), a date (its midnight UTC) or an ISO 8601 string."""
    if value is None:
        errors[name] = "is required"
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    parsed = parse_datetime(value)
    if parsed is None:
        errors[name] = "must be an ISO 8601 date and time"
    return parsed


def _positive_id(errors: dict[str, str], name: str, value: object, required: bool) -> int | None:
    if value is None:
        if required:
            errors[name] = "is required"
        return None
    if isinstance(value, str) and small_int(value) is not None:
        value = small_int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
        errors[name] = "must be a positive integer id"
        return None
    return value


def _period(since: Any, until: Any, errors: dict[str, str]) -> tuple[datetime, datetime]:
    start = _moment(errors, "since", since)
    end = _moment(errors, "until", until)
    if start is not None and end is not None:
        if start >= end:
            errors["until"] = "must be later than since"
        elif end - start > MAX_PERIOD:
            errors["until"] = "the period must be at most ten years long"
    if errors:
        raise ValidationError(errors)
    assert start is not None and end is not None
    return start, end


def _pct(part: int | float, whole: int | float) -> float | None:
    return None if not whole else round(part * 100 / whole, 1)


def _change(current: int | float, previous: int | float) -> float | None:
    """Change in % against the previous figure; None when there was nothing to compare with."""
    if not previous:
        return 0.0 if not current else None
    return round((current - previous) * 100 / previous, 1)


def _seconds(dialect: str, later: Any, earlier: Any) -> ColumnElement[Any]:
    """``later - earlier`` in seconds, in SQL (the stored times are naive UTC on both databases)."""
    if dialect == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _materialized(cte: Any, dialect: str) -> Any:
    """``AS MATERIALIZED`` where the database knows it (PostgreSQL 12+, SQLite 3.35+)."""
    if dialect == "postgresql" or sqlite3.sqlite_version_info >= (3, 35):
        return cte.prefix_with("MATERIALIZED")
    return cte


# --- the funnel ----------------------------------------------------------------------------------------

async def funnel(session: AsyncSession, actor: User, *, pipeline_id: Any, since: Any, until: Any,
                 manager_id: Any = None) -> dict[str, Any]:
    """The sales funnel of ``pipeline_id`` for the deals created in ``[since, until)`` that the actor
    may see (``manager_id``: only those this user is responsible for)."""
    errors: dict[str, str] = {}
    pid = _positive_id(errors, "pipeline_id", pipeline_id, True)
    manager = _positive_id(errors, "manager_id", manager_id, False)
    start, end = _period(since, until, errors)
    assert pid is not None
    pipeline = await session.get(Pipeline, pid)
    if pipeline is None:
        raise NotFound("pipeline not found")
    stages = list((await session.scalars(
        select(Stage).where(Stage.pipeline_id == pid).order_by(Stage.position, Stage.id))).all())

    cohort: list[ColumnElement[bool]] = [
        Deal.pipeline_id == pid, Deal.created_at >= start, Deal.created_at < end,
        await access.deals_filter(session, actor),
    ]
    if manager is not None:
        cohort.append(Deal.responsible_id == manager)
    dialect = (await session.connection()).dialect.name
    now = utcnow()

    # Where the deals are now: count and sum per stage.
    now_rows = await session.execute(
        select(Deal.stage_id, func.count(Deal.id), func.coalesce(func.sum(Deal.amount_minor), 0))
        .where(*cohort).group_by(Deal.stage_id))
    current = {sid: (int(n), int(total)) for sid, n, total in now_rows}

    # Why the lost ones were lost.
    reason_rows = await session.execute(
        select(Deal.loss_reason_id, LossReason.name, func.count(Deal.id),
               func.coalesce(func.sum(Deal.amount_minor), 0))
        .join(Stage, Stage.id == Deal.stage_id)
        .outerjoin(LossReason, LossReason.id == Deal.loss_reason_id)
        .where(*cohort, Stage.kind == "lost")
        .group_by(Deal.loss_reason_id, LossReason.name))
    reasons: list[dict[str, Any]] = sorted(
        ({"id": rid, "name": name, "count": int(n), "amount": roubles(total)}
         for rid, name, n, total in reason_rows),
        key=lambda r: (-r["count"], r["name"] is None, r["name"] or ""))

    # Real stage changes of the cohort (a "move" to the same stage only records a result). The stage
    # ids are taken out of the JSON once, before the window sorts the rows (so the sort carries
    # integers, not payloads); both CTEs are materialized so that the two uses below share them.
    moves = _materialized(select(
        TimelineEntry.deal_id.label("deal_id"), TimelineEntry.occurred_at.label("at"),
        TimelineEntry.id.label("entry_id"), Deal.created_at.label("created_at"),
        TimelineEntry.payload[("from_stage", "id")].as_integer().label("from_id"),
        TimelineEntry.payload[("to_stage", "id")].as_integer().label("to_id"),
    ).join(Deal, Deal.id == TimelineEntry.deal_id)
        .where(*cohort, TimelineEntry.kind == "stage_change").cte("moves"), dialect)
    changes = _materialized(select(
        moves.c.deal_id, moves.c.at, moves.c.from_id, moves.c.to_id, moves.c.created_at,
        func.lag(moves.c.at).over(partition_by=moves.c.deal_id,
                                  order_by=(moves.c.at, moves.c.entry_id)).label("prev_at"),
    ).where(moves.c.from_id != moves.c.to_id).cte("changes"), dialect)

    # How far each deal got: the highest active stage position it has been in; a won deal (now or
    # ever) went past them all. Counted per furthest position, so Python only sums a histogram.
    visited = union_all(
        select(Deal.id.label("deal_id"), Deal.stage_id.label("stage_id")).where(*cohort),
        select(changes.c.deal_id, changes.c.from_id),
        select(changes.c.deal_id, changes.c.to_id),
    ).subquery("visited")
    furthest = (
        select(visited.c.deal_id,
               func.max(case((Stage.kind == "won", _PAST_ALL),
                             (Stage.kind == "active", Stage.position),
                             else_=null())).label("furthest"))
        .join(Stage, and_(Stage.id == visited.c.stage_id, Stage.pipeline_id == pid))
        .group_by(visited.c.deal_id)
    ).subquery("furthest")
    per_furthest = (
        select(literal_column("0").label("what"), furthest.c.furthest.label("key"),
               func.count().label("n"), literal_column("0").label("secs"))
        .where(furthest.c.furthest.is_not(None)).group_by(furthest.c.furthest))

    # Time in stage: each finished stay (from the previous change, or the deal's creation, to the
    # change that left the stage) and the current stay (to closed_at, or now while open); summed per
    # stage and divided by the number of deals that stayed there.
    moment = literal(now, UTCDateTime())
    stays = union_all(
        select(changes.c.from_id.label("stage_id"), changes.c.deal_id.label("deal_id"),
               _seconds(dialect, changes.c.at,
                        func.coalesce(changes.c.prev_at, changes.c.created_at)).label("secs")),
        select(Deal.stage_id, Deal.id,
               _seconds(dialect, func.coalesce(Deal.closed_at, moment), Deal.stage_changed_at))
        .where(*cohort),
    ).subquery("stays")
    per_stage = (
        select(literal_column("1"), stays.c.stage_id, func.count(distinct(stays.c.deal_id)),
               func.sum(stays.c.secs))
        .group_by(stays.c.stage_id))

    # One statement, so that the stage changes are read (and their JSON parsed) once.
    histogram: dict[int, int] = {}
    times: dict[int, tuple[float, int]] = {}
    counted: Result[int, Any, int, Any] = await session.execute(union_all(per_furthest, per_stage))
    for what, key, n, secs in counted:
        if int(what) == 0:
            histogram[int(key)] = int(n)
        elif key is not None:
            times[int(key)] = (float(secs or 0), int(n))

    active = [st for st in stages if st.kind == "active"]
    won_ids = {st.id for st in stages if st.kind == "won"}
    lost_ids = {st.id for st in stages if st.kind == "lost"}

    def reached_at(position: int) -> int:
        return sum(n for pos, n in histogram.items() if pos >= position)

    def total(ids: set[int]) -> tuple[int, int]:
        return (sum(current.get(i, (0, 0))[0] for i in ids), sum(current.get(i, (0, 0))[1] for i in ids))

    won_count, won_sum = total(won_ids)
    lost_count, lost_sum = total(lost_ids)
    all_count, all_sum = total({st.id for st in stages})
    reached = {st.id: reached_at(st.position) for st in active}
    reached.update({sid: current.get(sid, (0, 0))[0] for sid in won_ids | lost_ids})

    rows = []
    for st in stages:
        count, amount = current.get(st.id, (0, 0))
        row: dict[str, Any] = {
            "id": st.id, "name": st.name, "kind": st.kind, "color": st.color, "position": st.position,
            "count": count, "amount": roubles(amount), "reached": reached[st.id],
            "conversion_pct": None, "avg_seconds": None, "avg_hours": None, "avg_days": None,
        }
        if st.kind == "active":
            k = active.index(st)
            following = reached[active[k + 1].id] if k + 1 < len(active) else won_count
            row["conversion_pct"] = _pct(following, reached[st.id])
            secs, deals_in = times.get(st.id, (0.0, 0))
            if deals_in:
                avg = secs / deals_in
                row.update(avg_seconds=round(avg), avg_hours=round(avg / 3600, 2),
                           avg_days=round(avg / 86400, 2))
        rows.append(row)

    return {
        "pipeline": {"id": pipeline.id, "name": pipeline.name},
        "since": iso(start), "until": iso(end), "manager_id": manager,
        "total": {"count": all_count, "amount": roubles(all_sum)},
        "stages": rows,
        "won": {"count": won_count, "amount": roubles(won_sum)},
        "lost": {"count": lost_count, "amount": roubles(lost_sum)},
        "conversion_pct": _pct(won_count, all_count),
        "win_rate_pct": _pct(won_count, won_count + lost_count),
        "loss_reasons": reasons,
        "computed_at": iso(now),
    }


# --- the widgets ---------------------------------------------------------------------------------------

def _figure(current: int | float, previous: int | float) -> dict[str, Any]:
    return {"current": current, "previous": previous, "change_pct": _change(current, previous)}


def _split(column: Any, start: datetime, value: Any = 1) -> tuple[Any, Any]:
    """SUM of ``value`` for rows at or after ``start`` (this period) and before it (the previous one)."""
    at = literal(start, UTCDateTime())
    return (func.coalesce(func.sum(case((column >= at, value), else_=0)), 0),
            func.coalesce(func.sum(case((column < at, value), else_=0)), 0))


async def widgets(session: AsyncSession, actor: User, *, since: Any, until: Any,
                  manager_id: Any = None) -> dict[str, Any]:
    """Sales, new clients, new leads and tasks done / planned / overdue in ``[since, until)``, each
    with the same figure for the previous period of equal length and the change in %."""
    errors: dict[str, str] = {}
    manager = _positive_id(errors, "manager_id", manager_id, False)
    start, end = _period(since, until, errors)
    before = start - (end - start)
    now = utcnow()

    def within(column: Any) -> list[ColumnElement[bool]]:
        return [column >= before, column < end]

    # Sales: deals won (now in a won stage) with closed_at in the period.
    deal_where = [*within(Deal.closed_at), Stage.kind == "won", await access.deals_filter(session, actor)]
    if manager is not None:
        deal_where.append(Deal.responsible_id == manager)
    won_n, won_n_prev = _split(Deal.closed_at, start)
    won_sum, won_sum_prev = _split(Deal.closed_at, start, Deal.amount_minor)
    sales = (await session.execute(
        select(won_n, won_n_prev, won_sum, won_sum_prev)
        .join(Stage, Stage.id == Deal.stage_id).where(*deal_where))).one()

    client_where = [*within(Client.created_at), await access.clients_filter(session, actor)]
    if manager is not None:
        client_where.append(Client.manager_id == manager)
    clients = (await session.execute(select(*_split(Client.created_at, start)).where(*client_where))).one()

    lead_where = [*within(Lead.created_at), await access.leads_filter(session, actor)]
    if manager is not None:
        lead_where.append(Lead.manager_id == manager)
    leads = (await session.execute(select(*_split(Lead.created_at, start)).where(*lead_where))).one()

    task_where: list[ColumnElement[bool]] = [await access.tasks_filter(session, actor)]
    if manager is not None:
        task_where.append(Task.assignee_id == manager)
    done = (await session.execute(
        select(*_split(Task.completed_at, start)).where(*task_where, *within(Task.completed_at)))).one()
    planned = (await session.execute(
        select(*_split(Task.due_at, start)).where(*task_where, *within(Task.due_at)))).one()

    # Overdue at the end of each period (or now, if that comes first): due before that moment and
    # not completed by then.
    def overdue_at(moment: datetime) -> Any:
        at = literal(moment, UTCDateTime())
        return func.coalesce(func.sum(case(
            (and_(Task.due_at < at, or_(Task.completed_at.is_(None), Task.completed_at >= at)), 1),
            else_=0)), 0)

    end_at, start_at = min(end, now), min(start, now)
    overdue = (await session.execute(
        select(overdue_at(end_at), overdue_at(start_at))
        .where(*task_where, Task.due_at < literal(end_at, UTCDateTime()),
               or_(Task.completed_at.is_(None), Task.completed_at >= literal(start_at, UTCDateTime()))))
    ).one()

    def ints(row: Any) -> list[int]:
        return [int(x) for x in row]

    s = ints(sales)
    return {
        "since": iso(start), "until": iso(end),
        "previous": {"since": iso(before), "until": iso(start)},
        "manager_id": manager,
        "sales": {"count": _figure(s[0], s[1]),
                  "amount": {"current": roubles(s[2]), "previous": roubles(s[3]),
                             "change_pct": _change(s[2], s[3])}},
        "new_clients": _figure(*ints(clients)),
        "new_leads": _figure(*ints(leads)),
        "tasks_done": _figure(*ints(done)),
        "tasks_planned": _figure(*ints(planned)),
        "tasks_overdue": _figure(*ints(overdue)),
        "computed_at": iso(now),
    }


