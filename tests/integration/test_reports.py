"""Reports: the sales funnel and the widgets, with exact figures for a small hand-built history.

Deals are created and moved through the core services on a fake clock (``utcnow`` of the services is
replaced), so stage times, conversion and the period comparison are known to the hour.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from hub.crm import deals, pipelines, reports, tasks, timeline
from hub.crm.deals import moves as deal_moves
from hub.crm.deals import records as deal_records
from hub.crm.errors import NotFound, ValidationError
from hub.crm.models import Client, Deal, Lead, LossReason, Setting, Stage, TimelineEntry, User
from hub.db import Database

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MARCH = {"since": "2026-03-01T00:00:00Z", "until": "2026-04-01T00:00:00Z"}
H = timedelta(hours=1)


@dataclass
class Clock:
    at: datetime

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock(T0)
    for module in (deal_records, deal_moves, tasks, timeline, reports):  # where utcnow is looked up
        monkeypatch.setattr(module, "utcnow", c)
    return c


async def _user(s: Any, login: str, role: str) -> User:
    user = User(login=login, name=login.title(), role=role)
    s.add(user)
    await s.flush()
    return user


async def _client(s: Any, name: str, created_at: datetime, manager_id: int | None = None) -> Client:
    client = Client(name=name, manager_id=manager_id, created_at=created_at, updated_at=created_at)
    s.add(client)
    await s.flush()
    return client


@pytest.fixture
async def world(database: Database, clock: Clock) -> dict[str, Any]:
    """Six deals created on 2 March 2026 09:00 and moved over two days; one more won in February.

    position:  0 Первичный интерес, 1 Выявление потребностей, 2 Подготовка предложения,
               3 Предложение и закрытие, 4 Выполнение договора, 5 won, 6 lost
    d1 100 ₽  0 →(+2h) 1 →(+26h) 2                     now in 2
    d2 200 ₽  0 →(+4h) 1 →(+10h) won
    d3 300 ₽  0 →(+6h) lost «Дорого»
    d4 400 ₽  0 →(+1h) 2 →(+3h) 1                       now in 1, Anna's (an agent)
    d5 500 ₽  0, a same-stage "move" at +5h (only records a result)
    d6 600 ₽  0 →(+2h) 1 →(+4h) 2 →(+8h) lost «Выбрал конкурента»
    d7 1000 ₽ created 10 Feb, won 15 Feb (outside March)
    """
    async with database.transaction() as s:
        admin = await _user(s, "admin", "admin")
        anna = await _user(s, "anna", "agent")
        boris = await _user(s, "boris", "agent")
        client = await _client(s, "ООО Ромашка", datetime(2025, 12, 1, tzinfo=UTC), anna.id)
        stages = list((await s.scalars(
            select(Stage).where(Stage.pipeline_id == 1).order_by(Stage.position))).all())
    ids = [st.id for st in stages]

    async def at(moment: datetime, fn: Any, *args: Any) -> Any:
        clock.at = moment
        async with database.transaction() as s:
            return await fn(s, admin, *args)

    made = {}
    for n, amount in enumerate([100, 200, 300, 400, 500, 600], start=1):
        data = {"title": f"d{n}", "client_id": client.id, "amount": amount}
        if n == 4:
            data["responsible_id"] = anna.id
        made[n] = (await at(T0, deals.create_deal, data))["id"]

    def move(n: int, stage: int, **extra: Any) -> Any:
        return (deals.move_deal, made[n], {"stage_id": ids[stage], **extra})

    plan = [
        (1, move(4, 2)),
        (2, move(1, 1)), (2, move(6, 1)),
        (3, move(4, 1)),
        (4, move(2, 1)), (4, move(6, 2)),
        (5, move(5, 0, result="перезвонить позже")),
        (6, move(3, 6, loss_reason="Дорого")),
        (8, move(6, 6, loss_reason="Выбрал конкурента")),
        (10, move(2, 5)),
        (26, move(1, 2)),
    ]
    for hours, (fn, deal_id, data) in plan:
        await at(T0 + hours * H, fn, deal_id, data)

    d7 = (await at(datetime(2026, 2, 10, tzinfo=UTC), deals.create_deal,
                   {"title": "d7", "client_id": client.id, "amount": 1000}))["id"]
    await at(datetime(2026, 2, 15, tzinfo=UTC), deals.move_deal, d7, {"stage_id": ids[5]})

    # An open deal of another pipeline created in March stays out of pipeline 1's funnel.
    other = await at(T0, pipelines.create_pipeline,
                     {"name": "Тендеры", "stages": [{"name": "Заявка"}, {"name": "Победа", "kind": "won"}]})
    await at(T0, deals.create_deal, {"title": "tender", "client_id": client.id, "amount": 9999,
                                    "pipeline_id": other["id"]})
    clock.at = T0 + 48 * H
    return {"admin": admin, "anna": anna, "boris": boris, "client": client, "stages": stages,
            "deals": made, "other_pipeline": other["id"]}


def _by_position(report: dict[str, Any], key: str) -> list[Any]:
    return [row[key] for row in report["stages"]]


# --- the funnel --------------------------------------------------------------------------------------


async def test_funnel_exact_figures(database: Database, world: dict) -> None:
    async with database.reading() as s:
        report = await reports.funnel(s, world["admin"], pipeline_id=1, **MARCH)
    assert report["pipeline"] == {"id": 1, "name": "Продажи"}
    assert report["since"] == "2026-03-01T00:00:00Z" and report["until"] == "2026-04-01T00:00:00Z"
    assert _by_position(report, "kind") == ["active"] * 5 + ["won", "lost"]
    assert _by_position(report, "count") == [1, 1, 1, 0, 0, 1, 2]
    assert _by_position(report, "amount") == [500, 400, 100, 0, 0, 200, 900]
    assert _by_position(report, "reached") == [6, 4, 4, 1, 1, 1, 2]
    assert _by_position(report, "conversion_pct") == [66.7, 100.0, 25.0, 100.0, 100.0, None, None]
    # Hours in stage, per deal that stayed there (the same-stage "move" of d5 does not cut its stay):
    # stage 0: 2 + 4 + 6 + 1 + 48 + 2 = 63 h over 6 deals; stage 1: 24 + 6 + 45 + 2 = 77 h over 4;
    # stage 2: 22 + 2 + 4 = 28 h over 3.
    assert _by_position(report, "avg_hours") == [10.5, 19.25, 9.33, None, None, None, None]
    assert _by_position(report, "avg_seconds")[:3] == [37_800, 69_300, 33_600]
    assert report["stages"][1]["avg_days"] == 0.8
    assert report["total"] == {"count": 6, "amount": 2100}
    assert report["won"] == {"count": 1, "amount": 200}
    assert report["lost"] == {"count": 2, "amount": 900}
    assert report["conversion_pct"] == 16.7
    assert report["win_rate_pct"] == 33.3
    async with database.reading() as s:
        names = dict((await s.execute(select(LossReason.name, LossReason.id))).all())
    assert report["loss_reasons"] == [
        {"id": names["Выбрал конкурента"], "name": "Выбрал конкурента", "count": 1, "amount": 600},
        {"id": names["Дорого"], "name": "Дорого", "count": 1, "amount": 300},
    ]


async def test_funnel_period_picks_the_cohort_by_creation(database: Database, world: dict) -> None:
    async with database.reading() as s:
        february = await reports.funnel(s, world["admin"], pipeline_id=1,
                                        since=datetime(2026, 2, 1, tzinfo=UTC), until="2026-03-01")
        empty = await reports.funnel(s, world["admin"], pipeline_id=1, since="2027-01-01",
                                     until="2027-02-01")
        other = await reports.funnel(s, world["admin"], pipeline_id=world["other_pipeline"], **MARCH)
    assert february["total"] == {"count": 1, "amount": 1000}
    assert february["won"] == {"count": 1, "amount": 1000}
    assert _by_position(february, "reached") == [1, 1, 1, 1, 1, 1, 0]
    assert _by_position(february, "avg_hours")[0] == 5 * 24.0
    assert empty["total"] == {"count": 0, "amount": 0}
    assert _by_position(empty, "conversion_pct") == [None] * 7
    assert empty["conversion_pct"] is None and empty["loss_reasons"] == []
    assert [(r["name"], r["count"], r["amount"]) for r in other["stages"]] == [
        ("Заявка", 1, 9999), ("Победа", 0, 0)]


async def test_funnel_access_and_manager_filter(database: Database, world: dict) -> None:
    admin, anna, boris = world["admin"], world["anna"], world["boris"]
    async with database.reading() as s:
        own = await reports.funnel(s, anna, pipeline_id=1, **MARCH)
        by_manager = await reports.funnel(s, admin, pipeline_id=1, manager_id=anna.id, **MARCH)
        nothing = await reports.funnel(s, boris, pipeline_id=1, **MARCH)
        not_hers = await reports.funnel(s, anna, pipeline_id=1, manager_id=admin.id, **MARCH)
    assert _by_position(own, "count") == [0, 1, 0, 0, 0, 0, 0]
    assert _by_position(own, "reached") == [1, 1, 1, 0, 0, 0, 0]
    assert _by_position(own, "conversion_pct") == [100.0, 100.0, 0.0, None, None, None, None]
    assert _by_position(own, "avg_hours")[:3] == [1.0, 45.0, 2.0]
    assert own["total"] == {"count": 1, "amount": 400} and own["loss_reasons"] == []
    assert {k: v for k, v in by_manager.items() if k != "manager_id"} == \
        {k: v for k, v in own.items() if k != "manager_id"}
    assert nothing["total"]["count"] == 0 and not_hers["total"]["count"] == 0

    async with database.transaction() as s:
        s.add(Setting(key="agents_see_all", value={"enabled": True}))
    async with database.reading() as s:
        shared = await reports.funnel(s, boris, pipeline_id=1, **MARCH)
        everything = await reports.funnel(s, admin, pipeline_id=1, **MARCH)
    assert shared == everything


async def test_funnel_validates_its_arguments(database: Database, world: dict) -> None:
    admin = world["admin"]
    async with database.reading() as s:
        with pytest.raises(ValidationError) as err:
            await reports.funnel(s, admin, pipeline_id=1, since="2026-04-01", until="2026-03-01")
        assert set(err.value.fields) == {"until"}
        with pytest.raises(ValidationError) as err:
            await reports.funnel(s, admin, pipeline_id=1, since=T0, until=T0)
        assert set(err.value.fields) == {"until"}
        with pytest.raises(ValidationError) as err:
            await reports.funnel(s, admin, pipeline_id=None, since="вчера", until=None, manager_id="x")
        assert set(err.value.fields) == {"pipeline_id", "since", "until", "manager_id"}
        with pytest.raises(ValidationError) as err:
            await reports.funnel(s, admin, pipeline_id=True, since="2000-01-01", until="2030-01-01")
        assert set(err.value.fields) == {"pipeline_id", "until"}
        with pytest.raises(NotFound):
            await reports.funnel(s, admin, pipeline_id=999, **MARCH)
        with pytest.raises(ValidationError) as err:
            await reports.funnel(s, admin, pipeline_id=2**62, manager_id=2**31, **MARCH)
        assert set(err.value.fields) == {"pipeline_id", "manager_id"}
        # Naive datetimes and dates are UTC.
        naive = await reports.funnel(s, admin, pipeline_id="1", since=datetime(2026, 3, 1),
                                     until=datetime(2026, 4, 1).date())
    assert naive["total"]["count"] == 6


# --- the widgets -------------------------------------------------------------------------------------


@pytest.fixture
async def office(database: Database, world: dict, clock: Clock) -> dict[str, Any]:
    """Clients, leads and tasks around March 2026 (the previous period is 29 Jan – 1 Mar)."""
    admin, anna = world["admin"], world["anna"]
    async with database.transaction() as s:
        for day, manager in [(3, anna.id), (10, None), (31, None)]:
            await _client(s, f"март {day}", datetime(2026, 3, day, 12, tzinfo=UTC), manager)
        for day in (1, 27):
            await _client(s, f"февраль {day}", datetime(2026, 2, day, 12, tzinfo=UTC))
        await _client(s, "январь", datetime(2026, 1, 28, 23, tzinfo=UTC))  # before the previous period
        s.add(Lead(name="Лид", created_at=datetime(2026, 3, 5, tzinfo=UTC)))
        s.add(Lead(name="Старый лид", created_at=datetime(2025, 3, 5, tzinfo=UTC)))

    async def task(created: datetime, subject: str, due: str, done: datetime | None = None,
                   assignee: User | None = None) -> None:
        clock.at = created
        async with database.transaction() as s:
            made = await tasks.create_task(s, admin, {"subject": subject, "due_at": due,
                                                      "assignee_id": (assignee or admin).id})
        if done is not None:
            clock.at = done
            async with database.transaction() as s:
                await tasks.complete_task(s, admin, made["id"])

    feb1 = datetime(2026, 2, 1, tzinfo=UTC)
    await task(feb1, "t1", "2026-03-05T10:00:00Z", datetime(2026, 3, 4, tzinfo=UTC))
    await task(feb1, "t2", "2026-03-10T10:00:00Z", assignee=anna)
    await task(feb1, "t3", "2026-03-20T10:00:00Z", datetime(2026, 3, 25, tzinfo=UTC))
    await task(feb1, "t4", "2026-02-10T10:00:00Z", datetime(2026, 2, 9, tzinfo=UTC))
    await task(feb1, "t5", "2026-02-20T10:00:00Z")
    await task(feb1, "t6", "2026-04-20T10:00:00Z")
    clock.at = datetime(2026, 4, 10, tzinfo=UTC)
    return world


async def test_widgets_against_the_previous_period(database: Database, office: dict) -> None:
    async with database.reading() as s:
        w = await reports.widgets(s, office["admin"], **MARCH)
    assert w["since"] == "2026-03-01T00:00:00Z" and w["until"] == "2026-04-01T00:00:00Z"
    assert w["previous"] == {"since": "2026-01-29T00:00:00Z", "until": "2026-03-01T00:00:00Z"}
    assert w["sales"] == {"count": {"current": 1, "previous": 1, "change_pct": 0.0},
                          "amount": {"current": 200, "previous": 1000, "change_pct": -80.0}}
    # The default client of the deals was created in December 2025.
    assert w["new_clients"] == {"current": 3, "previous": 2, "change_pct": 50.0}
    assert w["new_leads"] == {"current": 1, "previous": 0, "change_pct": None}
    assert w["tasks_done"] == {"current": 2, "previous": 1, "change_pct": 100.0}
    assert w["tasks_planned"] == {"current": 3, "previous": 2, "change_pct": 50.0}
    # Overdue at 1 April: t2 and t5; at 1 March: t5 (t4 was done before it was due).
    assert w["tasks_overdue"] == {"current": 2, "previous": 1, "change_pct": 100.0}


async def test_widgets_overdue_is_counted_up_to_now(database: Database, office: dict) -> None:
    async with database.reading() as s:  # now is 10 April: t6 (due 20 April) is not overdue yet
        w = await reports.widgets(s, office["admin"], since="2026-03-01", until="2026-05-01")
    assert w["tasks_overdue"]["current"] == 2
    assert w["tasks_planned"]["current"] == 4


async def test_widgets_access_and_manager_filter(database: Database, office: dict) -> None:
    admin, anna, boris = office["admin"], office["anna"], office["boris"]
    async with database.reading() as s:
        own = await reports.widgets(s, anna, **MARCH)
        by_manager = await reports.widgets(s, admin, manager_id=anna.id, **MARCH)
        empty = await reports.widgets(s, boris, **MARCH)
    assert own["sales"]["count"] == {"current": 0, "previous": 0, "change_pct": 0.0}
    # Anna sees her own client (March 3) and the client of her deal (December), and unassigned leads.
    assert own["new_clients"] == {"current": 1, "previous": 0, "change_pct": None}
    assert own["new_leads"]["current"] == 1
    assert own["tasks_planned"] == {"current": 1, "previous": 0, "change_pct": None}
    assert own["tasks_overdue"] == {"current": 1, "previous": 0, "change_pct": None}
    assert own["tasks_done"]["current"] == 0
    assert by_manager["new_clients"]["current"] == 1
    assert by_manager["new_leads"]["current"] == 0  # the March lead has no manager
    assert by_manager["tasks_planned"] == own["tasks_planned"]
    assert by_manager["tasks_overdue"] == own["tasks_overdue"]
    assert empty["tasks_planned"]["current"] == 0 and empty["new_clients"]["current"] == 0
    with pytest.raises(ValidationError) as err:
        async with database.reading() as s:
            await reports.widgets(s, admin, since=None, until="2026-03-01", manager_id=0)
    assert set(err.value.fields) == {"since", "manager_id"}


# --- scale ---------------------------------------------------------------------------------------------


async def test_funnel_over_ten_thousand_deals(database: Database, world: dict) -> None:
    # Its speed is bench/funnel.py's figure (p99 ≤ 300 ms); a wall clock here would only measure the box.
    stages, anna, admin = world["stages"], world["anna"], world["admin"]
    rng = random.Random(7)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    deal_rows, moves = [], []
    first = 1_000
    for n in range(10_000):
        created = start + timedelta(minutes=n * 5)
        at, pos, path = created, 0, []
        while pos < 4 and rng.random() < 0.6:
            at += timedelta(hours=rng.randint(1, 72))
            path.append((pos, pos + 1, at))
            pos += 1
        end = rng.random()
        final = stages[pos]
        if end < 0.2:
            at += timedelta(hours=5)
            path.append((pos, 5, at))
            final = stages[5]
        elif end < 0.4:
            at += timedelta(hours=5)
            path.append((pos, 6, at))
            final = stages[6]
        deal_id = first + n
        deal_rows.append({
            "id": deal_id, "title": f"d{n}", "client_id": world["client"].id, "pipeline_id": 1,
            "stage_id": final.id, "amount_minor": 100 * (n % 50 + 1),
            "responsible_id": anna.id if n % 2 else admin.id, "currency": "RUB", "custom": {},
            "created_at": created, "updated_at": at, "stage_changed_at": at, "last_activity_at": at,
            "closed_at": at if final.kind != "active" else None,
        })
        for a, b, when in path:
            ref_a, ref_b = ({"id": st.id, "name": st.name, "kind": st.kind} for st in (stages[a], stages[b]))
            moves.append({
                "kind": "stage_change", "deal_id": deal_id, "client_id": world["client"].id,
                "occurred_at": when, "created_at": when, "text": "", "pinned": False,
                "payload": {"from_stage": ref_a, "to_stage": ref_b},
            })
    async with database.transaction() as s:
        await s.execute(insert(Deal), deal_rows)
        await s.execute(insert(TimelineEntry), moves)
    period = {"since": "2025-01-01", "until": "2025-03-01"}
    async with database.reading() as s:
        report = await reports.funnel(s, admin, pipeline_id=1, **period)
        own = await reports.funnel(s, anna, pipeline_id=1, **period)
    assert report["total"]["count"] == 10_000
    assert own["total"]["count"] == 5_000
    reached = _by_position(report, "reached")
    assert reached[0] == 10_000  # every deal started in the first stage
    assert reached[:5] == sorted(reached[:5], reverse=True)
    assert report["won"]["count"] == reached[5]
