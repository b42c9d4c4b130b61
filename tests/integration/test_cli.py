"""The ``crmhub`` command, run in-process (in a worker thread: it runs its own event loop) against the
test database given as ``CRMHUB_DATABASE_URL``; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hub import cli
from hub.crm.models import (
    Client,
    ContactPerson,
    ContactPoint,
    Deal,
    Lead,
    Setting,
    Stage,
    Task,
    TimelineEntry,
    User,
    UserExtension,
)
from hub.db import Database

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture
def crmhub(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
           capsys: pytest.CaptureFixture[str]):
    for key in ("CRMHUB_CONFIG", "CRMHUB_SERVER_HOST", "CRMHUB_SERVER_PORT"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CRMHUB_DATABASE_URL", db_url)
    monkeypatch.chdir(tmp_path)

    async def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = await asyncio.to_thread(cli.main, list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


async def count(database: Database, model: type, *where: object) -> int:
    async with database.reading() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_migrate(crmhub, database: Database) -> None:
    code, out, err = await crmhub("migrate")
    assert code == 0, err
    assert "up to date" in out
    assert await count(database, Stage) == 7


async def test_create_user_creates_then_updates(crmhub, database: Database) -> None:
    code, out, err = await crmhub("create-user", "--login", "agent7", "--password", "s3cret-pass",
                                  "--role", "agent", "--name", "Агент Семь",
                                  "--extension", "107", "--extension", "207")
    assert code == 0, err
    assert "created user agent7" in out
    async with database.reading() as s:
        user = await s.scalar(select(User).where(User.login == "agent7"))
        exts = set((await s.execute(select(UserExtension.extension)
                                    .where(UserExtension.user_id == user.id))).scalars())
    assert (user.role, user.name) == ("agent", "Агент Семь")
    assert exts == {"107", "207"}

    code, out, err = await crmhub("create-user", "--login", "agent7", "--password", "n3w-pass-word",
                                  "--role", "manager")
    assert code == 0, err
    assert "updated user agent7" in out
    assert await count(database, User, User.login == "agent7") == 1
    async with database.reading() as s:
        from hub.crm import users

        assert await users.authenticate(s, "agent7", "n3w-pass-word") is not None
        assert await users.authenticate(s, "agent7", "s3cret-pass") is None
        assert (await s.scalar(select(User.role).where(User.login == "agent7"))) == "manager"


async def test_usage_and_config_errors_are_one_line(crmhub, tmp_path: Path) -> None:
    code, _out, err = await crmhub("create-user", "--login", "x", "--password", "y", "--role", "boss")
    assert code == 2
    assert "invalid choice" in err

    code, _out, err = await crmhub("migrate", "--config", str(tmp_path / "missing.toml"))
    assert code == 2
    assert err.strip() == f"crmhub: configuration error: config file not found: {tmp_path / 'missing.toml'}"

    code, _out, err = await crmhub("create-user", "--login", "bad login!", "--password", "pass-word",
                                   "--role", "agent")
    assert code == 1
    assert err.startswith("crmhub: invalid input: login:") and len(err.strip().splitlines()) == 1

    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nport = 'eighty'\n", encoding="utf-8")
    code, _out, err = await crmhub("migrate", "--config", str(bad))
    assert code == 2
    assert "server.port" in err and "Traceback" not in err


async def test_demo_data_fills_an_empty_database_once(crmhub, database: Database) -> None:
    code, out, err = await crmhub("demo-data")
    assert code == 0, err
    for login in ("admin / admin", "manager / manager", "agent1 / agent1", "agent2 / agent2"):
        assert login in out

    assert 45 <= await count(database, Client) <= 55
    assert 90 <= await count(database, Deal) <= 110
    assert await count(database, ContactPerson) >= 40
    assert 10 <= await count(database, Lead) <= 20
    assert await count(database, Lead, Lead.unsorted.is_(True)) >= 1
    async with database.reading() as s:
        stages = (await s.execute(select(Stage.id, Stage.kind).where(Stage.pipeline_id == 1))).all()
        used = set((await s.execute(select(Deal.stage_id).distinct())).scalars())
        lost_ids = [sid for sid, kind in stages if kind == "lost"]
        lost_without_reason = await s.scalar(
            select(func.count()).select_from(Deal)
            .where(Deal.stage_id.in_(lost_ids), Deal.loss_reason_id.is_(None)))
        agents = dict((await s.execute(select(UserExtension.extension, User.login)
                                       .join(User, User.id == UserExtension.user_id))).all())
        inns = list((await s.execute(select(Client.inn).where(Client.inn.is_not(None)))).scalars())
    assert used == {sid for sid, _kind in stages}, "every stage of the default pipeline has deals"
    assert lost_without_reason == 0
    assert agents == {"101": "agent1", "102": "agent2"}
    from hub.crm.inn import check_inn

    assert inns and all(check_inn(inn) is None for inn in inns)
    assert await count(database, TimelineEntry, TimelineEntry.kind == "stage_change") >= 50
    assert await count(database, TimelineEntry, TimelineEntry.kind == "note") >= 20
    assert await count(database, Task) >= 20
    assert await count(database, Task, Task.completed_at.is_not(None)) >= 1
    assert await count(database, ContactPoint, ContactPoint.kind == "phone") >= 100
    async with database.reading() as s:
        from datetime import UTC, datetime

        now = datetime.now(UTC)
        overdue_tasks = await s.scalar(select(func.count()).select_from(Task).where(
            Task.completed_at.is_(None), Task.due_at < now))
        overdue_deals = await s.scalar(select(func.count()).select_from(Deal).where(
            Deal.next_interaction_at < now))
        assert (await s.get(Setting, "demo_data")) is not None
    assert overdue_tasks >= 1 and overdue_deals >= 1

    code, out, err = await crmhub("demo-data")
    assert code == 1
    assert "empty database" in err and "Traceback" not in err
    assert 45 <= await count(database, Client) <= 55


async def test_import_clients_imports_good_rows_and_reports_bad_ones(crmhub, database: Database) -> None:
    assert (await crmhub("create-user", "--login", "admin", "--password", "Strong-pass-2026",
                         "--role", "admin"))[0] == 0
    assert (await crmhub("create-user", "--login", "manager", "--password", "Strong-pass-2027",
                         "--role", "manager"))[0] == 0

    code, out, _err = await crmhub("import-clients", str(FIXTURES / "clients.csv"))
    assert code == 1, "bad rows make the exit code non-zero"
    lines = [ln for ln in out.splitlines() if ": line " in ln]
    by_line = {int(ln.split(": line ")[1].split(":")[0]): ln for ln in lines}
    assert set(by_line) == {4, 5, 6, 7, 9}, out
    assert "inn: checksum does not match" in by_line[4]
    assert "manager" in by_line[5] and "agent9" in by_line[5]
    assert "7701945807" in by_line[6] and "exists already" in by_line[6]
    assert "phones" in by_line[7]
    assert "name" in by_line[9]
    assert "imported 3 of 8 rows" in out

    async with database.reading() as s:
        names = set((await s.execute(select(Client.name))).scalars())
        manager_id = await s.scalar(select(User.id).where(User.login == "manager"))
        romashka = await s.scalar(select(Client).where(Client.inn == "7701945807"))
        phones = set((await s.execute(select(ContactPoint.value).where(
            ContactPoint.client_id == romashka.id, ContactPoint.kind == "phone"))).scalars())
        sokolov_kind = await s.scalar(select(Client.kind).where(Client.inn == "500164262129"))
        petrov_kind = await s.scalar(select(Client.kind).where(Client.name == "Петров Сергей Николаевич"))
    assert names == {"ООО «Ромашка»", "ИП Соколов Андрей Викторович", "Петров Сергей Николаевич"}
    assert romashka.manager_id == manager_id and romashka.kpp == "770101001"
    assert phones == {"+74951234567", "+79165551234"}
    assert sokolov_kind == "company" and petrov_kind == "person"
    # the bad rows left nothing behind: no client, no contact point
    assert await count(database, Client, Client.inn == "7701573683") == 0
    assert await count(database, ContactPoint, ContactPoint.value == "bad@phone.ru") == 0
    assert await count(database, ContactPoint, ContactPoint.value == "sales@vector.ru") == 0
    assert await count(database, Client, Client.name == "АО «Дубль»") == 0


async def test_import_semicolon_file_with_bom_and_russian_headers(crmhub, database: Database) -> None:
    code, out, err = await crmhub("import-clients", str(FIXTURES / "clients_semicolon.csv"))
    assert code == 1, err
    assert "line 4: kpp:" in out
    assert "imported 2 of 3 rows" in out
    async with database.reading() as s:
        kama = await s.scalar(select(Client).where(Client.inn == "1655003325"))
        phones = set((await s.execute(select(ContactPoint.value).where(
            ContactPoint.client_id == kama.id, ContactPoint.kind == "phone"))).scalars())
    assert kama.name == "ООО «Кама Трейд»"
    assert phones == {"+78432223344", "+79170001122"}
    assert await count(database, Client, Client.name == "ООО «Без ИНН»") == 1


async def test_import_clients_missing_file(crmhub, tmp_path: Path) -> None:
    code, _out, err = await crmhub("import-clients", str(tmp_path / "nope.csv"))
    assert code == 1
    assert err.strip() == f"crmhub: file not found: {tmp_path / 'nope.csv'}"


async def test_import_clients_without_name_column(crmhub, tmp_path: Path) -> None:
    path = tmp_path / "wrong.csv"
    path.write_text("title,inn\nФирма,7701945807\n", encoding="utf-8")
    code, _out, err = await crmhub("import-clients", str(path))
    assert code == 1
    assert "no 'name' column" in err and "Traceback" not in err


async def test_run_serves_and_prints_its_address_and_the_demo_login(
        db_url: str, database: Database, tmp_path: Path) -> None:
    import os
    import socket
    import subprocess
    import sys
    import time

    import aiohttp

    from hub.crm import users

    async with database.transaction() as s:
        await users.create_or_update_user(s, "admin", "admin", "admin", check_policy=False)
        await users.create_or_update_user(s, "agent1", "changed-password", "agent")
        s.add(Setting(key="demo_data", value={"logins": [
            {"login": "admin", "password": "admin", "role": "admin"},
            {"login": "agent1", "password": "agent1", "role": "agent"}]}))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMHUB_")}
    env.update(CRMHUB_DATABASE_URL=db_url, NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    log_path = tmp_path / "hub.log"
    with open(log_path, "wb") as log:  # noqa: ASYNC230 - a local file, opened once
        proc = subprocess.Popen(  # noqa: ASYNC220 - the hub under test runs as its own process
            [sys.executable, "-m", "hub.cli", "run", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession(trust_env=False) as http:
            while True:
                assert proc.poll() is None, log_path.read_text(errors="replace")
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() < deadline, log_path.read_text(errors="replace")
                await asyncio.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    output = log_path.read_text(errors="replace")
    assert f"http://127.0.0.1:{port}/" in output
    assert "log in as admin / admin" in output
    assert "agent1 / agent1" not in output, "a changed demo password is not advertised"
    assert proc.returncode in (0, -15)
