"""The audit log (issue 13): logins and failures, tokens, password changes, users' role, extension
and activity changes, settings and deletions are recorded with who, when and the client's address;
administrators read them (API and /settings/audit) with filters; old events are purged."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select, update

from hub.crm import audit
from hub.crm.models import AuditEvent, utcnow
from hub.web.keys import DB
from tests.integration.conftest import PASSWORD, Api
from tests.integration.test_web_pages import logged_in, page


async def actions(admin: Api, **params: str) -> list[tuple[str, str, Any]]:
    items = (await admin.get("/api/v1/audit", params=params))["items"]
    return [(e["action"], e["actor_login"], e["target_id"]) for e in items]


async def test_security_actions_are_recorded_with_who_and_where(client: TestClient, app: Any, admin: Api,
                                                                agent: Api) -> None:
    async with client.post("/api/v1/auth/token", json={"login": "agent", "password": "wrong-password"}) as r:
        assert r.status == 401
    await admin.patch(f"/api/v1/users/{agent.id}", {"role": "manager", "extensions": ["105"]})
    await admin.patch(f"/api/v1/users/{agent.id}", {"password": "Новый-пароль-2026"})
    await admin.patch("/api/v1/settings/access", {"agents_see_all": True})
    made = await admin.post("/api/v1/clients", {"name": "ООО «Удаляемое»"}, expect=201)
    await admin.delete(f"/api/v1/clients/{made['id']}")
    await admin.delete(f"/api/v1/users/{agent.id}")
    log = await actions(admin)
    assert log[:6] == [("user_deleted", "admin", agent.id), ("client_deleted", "admin", made["id"]),
                       ("settings_changed", "admin", None), ("password_changed", "admin", agent.id),
                       ("user_updated", "admin", agent.id), ("login_failed", "agent", None)]
    items = (await admin.get("/api/v1/audit"))["items"]
    changed = next(e for e in items if e["action"] == "user_updated")
    assert changed["details"] == {"role": ["agent", "manager"], "extensions": [["101"], ["105"]]}
    assert changed["remote"] == "127.0.0.1"
    assert {e["action"] for e in items} >= {"token_created", "login_failed"}
    # filters
    assert {a for a, _, _ in await actions(admin, action="login_failed")} == {"login_failed"}
    assert {who for _, who, _ in await actions(admin, login="agent")} == {"agent"}
    assert await actions(admin, since=(utcnow() + timedelta(hours=1)).isoformat()) == []


async def test_only_admins_read_it_and_the_page_filters(client: TestClient, admin: Api, manager: Api,
                                                        agent: Api) -> None:
    await manager.get("/api/v1/audit", expect=403)
    await agent.get("/api/v1/audit", expect=403)
    await admin.patch("/api/v1/settings/access", {"agents_see_all": True})
    await logged_in(client, admin)
    html = await page(client, "/settings/audit?action=settings_changed")
    assert "Журнал аудита" in html and "agents_see_all" in html
    rows = html.split("<tbody>", 1)[1]
    assert 'data-action="settings_changed"' in rows and 'data-action="login"' not in rows
    client.session.cookie_jar.clear()
    await logged_in(client, agent)
    await page(client, "/settings/audit", status=403)


async def test_old_events_are_purged(app: Any, admin: Api) -> None:
    async with app[DB].transaction() as s:
        audit.record(s, "logout", actor_login="old")
    async with app[DB].transaction() as s:
        await s.execute(update(AuditEvent).where(AuditEvent.actor_login == "old")
                        .values(at=utcnow() - timedelta(days=400)))
        assert await audit.purge(s, 365) == 1
        assert await s.scalar(select(func.count()).select_from(AuditEvent)
                              .where(AuditEvent.actor_login == "old")) == 0
    assert PASSWORD  # the fixtures' users log in with it
