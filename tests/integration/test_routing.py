"""Routing new work to a free agent (hub.crm.routing, issue 12): the chooser, its round-robin turn
kept in the database, the missed call's callback task, and the setting on the API and the Settings
page — on both databases."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from hub.crm import call_intake as intake
from hub.crm import messages, presence, routing, settings
from hub.crm.models import Conversation, Notification, Task, User, UserExtension
from hub.crm.ports import InboundMessage, PresenceState
from hub.crm.presence import PresenceBoard
from hub.db import Database, create_engine
from tests.integration.conftest import Api
from tests.integration.test_call_intake import AUTO, CLIENT_PHONE, ended
from tests.integration.test_deals import make_client, make_user
from tests.integration.test_settings import form
from tests.integration.test_web_pages import logged_in, page


@pytest.fixture
async def team(database: Database) -> dict[str, Any]:
    """A manager (200) who owns a client; agents Anna (101), Boris (102), Vera (103); and users who are
    not in the group although free: a second manager (201), an inactive agent (104), an agent with
    no phone."""
    async with database.transaction() as s:
        admin = await make_user(s, "admin", "admin", "Админ")
        manager = await make_user(s, "manager", "manager", "Мария")
        anna = await make_user(s, "anna", "agent", "Анна")
        boris = await make_user(s, "boris", "agent", "Борис")
        vera = await make_user(s, "vera", "agent", "Вера")
        other_manager = await make_user(s, "oleg", "manager", "Олег")
        gone = await make_user(s, "gone", "agent", "Уволен")
        gone.active = False
        await make_user(s, "nophone", "agent", "Без телефона")
        s.add_all([UserExtension(extension="200", user_id=manager.id),
                   UserExtension(extension="101", user_id=anna.id),
                   UserExtension(extension="102", user_id=boris.id),
                   UserExtension(extension="103", user_id=vera.id),
                   UserExtension(extension="201", user_id=other_manager.id),
                   UserExtension(extension="104", user_id=gone.id)])
        client = await make_client(s, "ООО Ромашка", manager.id, phone=CLIENT_PHONE)
    return {"admin": admin, "manager": manager, "anna": anna, "boris": boris, "vera": vera,
            "client": client}


async def board_of(database: Database, **phones: PresenceState) -> PresenceBoard:
    """A presence board with these phones' states (``e101="on_call"``); the rest are unavailable."""
    board = PresenceBoard()
    async with database.reading() as s:
        board.set_owners(await presence.owners(s))
    board.phones_changed({name.removeprefix("e"): state for name, state in phones.items()}, complete=True)
    return board


ALL_FREE: dict[str, PresenceState] = {"e200": "free", "e101": "free", "e102": "free", "e103": "free",
                                      "e201": "free", "e104": "free"}


async def turn_on(database: Database, team: dict[str, Any], on: bool = True) -> None:
    async with database.transaction() as s:
        admin = await s.get(User, team["admin"].id)
        assert admin is not None
        changed = await settings.update_access(s, admin, {"route_to_free_agent": on})
        assert changed["route_to_free_agent"] is on


async def choose(database: Database, board: PresenceBoard | None, responsible_id: int | None) -> int | None:
    async with database.transaction() as s:
        return await routing.free_agent(s, board, responsible_id=responsible_id)


async def test_a_free_responsible_keeps_the_work(database: Database, team: dict[str, Any]) -> None:
    await turn_on(database, team)
    board = await board_of(database, **ALL_FREE)
    assert await choose(database, board, team["manager"].id) == team["manager"].id
    assert await choose(database, board, team["boris"].id) == team["boris"].id
    board.phones_changed({"200": "on_call"})  # the manager's phone is busy now: the first free agent's
    assert await choose(database, board, team["manager"].id) == team["anna"].id


async def test_a_responsible_on_a_call_or_offline_gives_it_to_the_next_free_agent(
        database: Database, team: dict[str, Any]) -> None:
    await turn_on(database, team)
    # only Boris of the group is free: not the other manager, not the inactive agent
    board = await board_of(database, e200="on_call", e101="ringing", e102="free", e103="dnd",
                           e201="free", e104="free")
    assert await choose(database, board, team["manager"].id) == team["boris"].id
    board.phones_changed({"200": "dnd"})  # "do not disturb" is away too
    assert await choose(database, board, team["manager"].id) == team["boris"].id
    board.phones_changed({"200": "unavailable"})  # offline
    assert await choose(database, board, team["manager"].id) == team["boris"].id
    assert await choose(database, board, None) == team["boris"].id  # nobody's: a free agent's
    async with database.transaction() as s:  # the manager leaves: their work goes to a free agent
        manager = await s.get(User, team["manager"].id)
        assert manager is not None
        manager.active = False
    board.phones_changed({"200": "free"})
    assert await choose(database, board, team["manager"].id) == team["boris"].id


async def test_consecutive_misses_go_round_robin_and_the_turn_survives_a_restart(
        database: Database, db_url: str, team: dict[str, Any]) -> None:
    await turn_on(database, team)
    board = await board_of(database, **{**ALL_FREE, "e200": "on_call"})
    manager, anna, boris, vera = (team[k].id for k in ("manager", "anna", "boris", "vera"))
    assert [await choose(database, board, manager) for _ in range(2)] == [anna, boris]
    # a restart: another engine, another board (the phones as the PBX lists them again)
    again = Database(create_engine(db_url), database.bus)
    try:
        board2 = await board_of(again, **{**ALL_FREE, "e200": "on_call"})
        assert [await choose(again, board2, manager) for _ in range(2)] == [vera, anna]  # wraps around
        board2.phones_changed({"102": "on_call"})  # Boris's turn, but he is busy: Vera's
        assert await choose(again, board2, manager) == vera
        # two at once take two turns (PostgreSQL: the turn's row is locked until the commit)
        board2.phones_changed({"102": "free"})
        both = await asyncio.gather(choose(again, board2, manager), choose(database, board2, manager))
        assert sorted(both) == [anna, boris]
    finally:
        await again.dispose()


async def test_nobody_free_leaves_the_responsible(database: Database, team: dict[str, Any]) -> None:
    await turn_on(database, team)
    board = await board_of(database, e200="on_call", e101="on_call", e102="dnd", e201="free", e104="free")
    assert await choose(database, board, team["manager"].id) == team["manager"].id
    assert await choose(database, board, None) is None
    board.phones_changed({"102": "free"})  # Boris hangs up: the next one is his
    assert await choose(database, board, team["manager"].id) == team["boris"].id


async def test_routing_off_or_no_telephony_leaves_the_responsible(
        database: Database, team: dict[str, Any]) -> None:
    board = await board_of(database, **{**ALL_FREE, "e200": "on_call"})
    assert await choose(database, board, team["manager"].id) == team["manager"].id  # off by default
    async with database.transaction() as s:
        assert await routing.assignee_for_new_chat(s, board, None) is None
    await turn_on(database, team)
    await turn_on(database, team, False)
    assert await choose(database, board, team["manager"].id) == team["manager"].id
    await turn_on(database, team)
    assert await choose(database, None, team["manager"].id) == team["manager"].id  # no board
    async with database.transaction() as s:  # the chats' door: the same rule
        assert await routing.assignee_for_new_chat(s, board, team["manager"].id) == team["anna"].id
        assert await routing.assignee_for_new_chat(s, None, None) is None


async def test_a_missed_calls_callback_goes_to_a_free_agent_when_the_managers_phone_is_on_call(
        database: Database, team: dict[str, Any]) -> None:
    board = await board_of(database, e200="on_call", e101="on_call", e102="free", e103="unavailable")
    door = intake.CallIntake(database, AUTO, board=board)
    # routing off: the manager's, as before
    await door.ended(ended("R0", CLIENT_PHONE, "missed", ext="101", rung=("101",)))
    async with database.transaction() as s:
        first = await s.scalar(select(Task).where(Task.kind == "callback"))
        assert first is not None and first.assignee_id == team["manager"].id
        first.percent, first.completed_at = 100, first.created_at  # done: the next miss makes a new task

    await turn_on(database, team)
    result = await door.ended(ended("R1", CLIENT_PHONE, "missed", ext="101", rung=("101",)))
    assert result is not None and result["callback_task_id"] != first.id
    async with database.reading() as s:
        task = await s.get(Task, result["callback_task_id"])
        notes = (await s.scalars(select(Notification).where(Notification.kind == "missed_call"))).all()
    assert task is not None and task.assignee_id == team["boris"].id and task.client_id == team["client"].id
    # the bell follows the task
    assert [n.user_id for n in notes if n.payload["task_id"] == task.id] == [team["boris"].id]
    # a second miss joins the open task (it is not handed round again)
    again = await door.ended(ended("R2", CLIENT_PHONE, "missed", ext="101", rung=("101",)))
    assert again is not None and again["callback_task_id"] == task.id


# --- the setting on the API and the Settings page ----------------------------------------------------

ACCESS = "/api/v1/settings/access"
GRANT = {"call_grant": "end_of_day", "call_grant_hours": 8}  # (the call's grant: test_role_matrix.py)


async def test_the_setting_on_the_api_and_the_settings_page(
        client: TestClient, admin: Api, agent: Api) -> None:
    assert await agent.get(ACCESS) == {"agents_see_all": False, "route_to_free_agent": False, **GRANT}
    await agent.patch("/api/v1/settings/access", {"route_to_free_agent": True}, expect=403)
    await admin.patch("/api/v1/settings/access", {"route_to_free_agent": "yes"}, expect=422)
    assert await admin.patch("/api/v1/settings/access", {"route_to_free_agent": True}) == {
        "agents_see_all": False, "route_to_free_agent": True, **GRANT}
    # one setting changed alone leaves the other as it is
    assert await admin.patch("/api/v1/settings/access", {"agents_see_all": True}) == {
        "agents_see_all": True, "route_to_free_agent": True, **GRANT}

    csrf = await logged_in(client, admin)
    html = await page(client, "/settings/access")
    assert "Передавать свободному агенту" in html and 'name="route_to_free_agent" checked' in html
    await form(client, "/settings/access", {"agents_see_all": "on"}, csrf)
    assert await agent.get(ACCESS) == {"agents_see_all": True, "route_to_free_agent": False, **GRANT}
    await form(client, "/settings/access", {"route_to_free_agent": "on"}, csrf)
    assert await agent.get(ACCESS) == {"agents_see_all": False, "route_to_free_agent": True, **GRANT}


async def test_a_new_chat_from_an_unknown_person_goes_to_a_free_agent(database: Database,
                                                                       team: dict[str, Any],
                                                                       tmp_path: Any) -> None:
    """The messaging intake: a WhatsApp message from an unknown number makes a lead, and its chat
    goes to the free agents in turn (Anna is on a call); with routing off it stays unassigned."""
    board = await board_of(database, e101="on_call", e102="free", e103="free")
    intake_ = messages.MessageIntake(database, attachments_dir=tmp_path, board=board)

    async def write(number: str) -> int | None:
        message = InboundMessage(channel="whatsapp", provider_id=f"SM{number}", address=number,
                                 text="Здравствуйте", sender_name=number)
        taken = await intake_.received(message)
        assert taken is not None
        async with database.reading() as s:
            conversation = await s.get(Conversation, taken["conversation_id"])
            assert conversation is not None and conversation.lead_id is not None
            return conversation.assignee_id

    await turn_on(database, team)
    assert [await write("+79160000001"), await write("+79160000002"), await write("+79160000003")] == [
        team["boris"].id, team["vera"].id, team["boris"].id]
    await turn_on(database, team, False)
    assert await write("+79160000004") is None
