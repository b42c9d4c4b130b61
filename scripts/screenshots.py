"""Render PNG screenshots of the web UI with Russian demo data into docs/screenshots/.

    .venv/bin/python scripts/screenshots.py            # all of them
    .venv/bin/python scripts/screenshots.py inbox mail # only these groups

Starts a hub on a temporary SQLite database at 127.0.0.1, fills it with ``crmhub demo-data``'s data
plus a few inbound messages, letters and notifications (as the channels would add them), logs in as
agent1 and drives Debian's /usr/bin/chromium through Playwright (never a downloaded browser).
"""

from __future__ import annotations

import asyncio
import io
import sys
import tempfile
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from playwright.async_api import async_playwright
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.app import create_app  # noqa: E402
from hub.config import Config, TwilioConfig  # noqa: E402
from hub.crm import attachments, demo, notifications, timeline  # noqa: E402
from hub.crm.models import Client, Deal, Stage, TimelineEntry, User  # noqa: E402
from hub.crm.presence import PresenceBoard  # noqa: E402
from hub.web.keys import BUS, CONFIG, DB, PRESENCE  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--no-proxy-server"]
LOGIN = "agent1"


async def _channel_like_data(app: web.Application) -> None:
    """Inbound entries and bell items such as telephony and messaging will add."""
    now = datetime.now(UTC)
    async with app[DB].transaction() as s:
        agent = await s.scalar(select(User).where(User.login == LOGIN))
        assert agent is not None
        deals = (await s.scalars(select(Deal).where(Deal.responsible_id == agent.id).order_by(Deal.id))).all()
        clients = {c.id: c for c in (await s.scalars(select(Client))).all()}
        messages = [
            ("telegram", "Добрый день! Подскажите, когда ждать счёт на вторую партию?", 12),
            ("sms", "Перезвоните, пожалуйста, по поводу доставки", 47),
            ("call", "", 95),
            ("email", "Направляем подписанный договор и реквизиты для оплаты.", 180),
        ]
        for (kind, text, minutes), deal in zip(messages, deals, strict=False):
            await timeline.add_entry(s, kind=kind, direction="in", text=text, deal_id=deal.id,
                                     payload={"status": "missed"} if kind == "call" else {},
                                     occurred_at=now - timedelta(minutes=minutes))
        client = clients.get(deals[0].client_id) if deals else None
        caller = client.name if client else "Клиент"
        await notifications.notify(s, agent.id, kind="missed_call", title="Пропущенный звонок",
                                   text=f"{caller}: +7 916 123-45-67", link="/calls")
        await notifications.notify(s, agent.id, kind="task", title="Новая задача: подготовить КП",
                                   text="Назначила Ольга Смирнова", link="/tasks")


async def _settings_shots(browser: Any, base: str) -> None:
    """The administrators' settings: users, and the stage editor at both widths."""
    for name, width, height in (("", 1280, 860), ("-phone", 390, 844)):
        context = await browser.new_context(base_url=base, locale="ru-RU", device_scale_factor=1,
                                            viewport={"width": width, "height": height})
        page = await context.new_page()
        await page.goto("/login")
        await page.get_by_label("Логин").fill("admin")
        await page.get_by_label("Пароль").fill("admin")
        await page.get_by_role("button", name="Войти").click()
        await page.wait_for_selector("body[data-live='true']")
        await page.goto("/settings/pipelines")
        if name:
            await page.evaluate("window.scrollTo(0, document.querySelector('.pipeline-editor')"
                                ".getBoundingClientRect().top + window.scrollY - 110)")
        await page.screenshot(path=OUT / f"settings-stages{name}.png", full_page=not name)
        if not name:
            await page.goto("/settings/users")
            await page.screenshot(path=OUT / "settings-users.png")
        await context.close()


async def _client_shots(browser: Any, base: str) -> None:
    """Clients and leads: the list, a client's card (main and contact persons), a lead with the
    convert dialog; the list and the card at phone width too."""
    for name, width, height in (("", 1280, 860), ("-phone", 390, 844)):
        context = await browser.new_context(base_url=base, locale="ru-RU", device_scale_factor=1,
                                            viewport={"width": width, "height": height})
        page = await context.new_page()
        await page.goto("/login")
        await page.get_by_label("Логин").fill(LOGIN)
        await page.get_by_label("Пароль").fill(LOGIN)
        await page.get_by_role("button", name="Войти").click()
        await page.wait_for_selector("body[data-live='true']")
        await page.goto("/clients")
        await page.screenshot(path=OUT / f"clients{name}.png")
        await page.locator("#client-rows a.row-title").first.click()
        await page.wait_for_selector("body[data-live='true']")
        await page.screenshot(path=OUT / f"client-card{name}.png", full_page=not name)
        if not name:
            await page.get_by_role("link", name="Контактные лица").click()
            if await page.locator("li.contact").count() == 0:
                add = page.locator("form[action$='/contacts']")
                await add.get_by_label("Имя").fill("Сергей Павлович Орлов")
                await add.get_by_label("Должность").fill("Коммерческий директор")
                await add.get_by_label("Телефоны").fill("8 (916) 555-12-34")
                await add.get_by_label("E-mail").fill("s.orlov@example.ru")
                await add.get_by_role("button", name="Добавить контактное лицо").click()
                await page.wait_for_selector("li.contact")
            await page.screenshot(path=OUT / "client-contacts.png", full_page=True)
            await page.goto("/leads")
            await page.screenshot(path=OUT / "leads.png")
            await page.locator("#lead-rows a.row-title").first.click()
            await page.get_by_role("link", name="Сделать клиентом").click()
            await page.wait_for_selector("dialog#convert[open]")
            await page.screenshot(path=OUT / "lead-convert.png")
        await context.close()


async def _deals_shots(browser: Any, base: str) -> None:
    """The deals kanban (with the move dialog) and the deals table, as a manager; the kanban at phone
    width too."""
    for name, width, height in (("", 1280, 860), ("-phone", 390, 844)):
        context = await browser.new_context(base_url=base, locale="ru-RU", device_scale_factor=1,
                                            viewport={"width": width, "height": height})
        page = await context.new_page()
        await page.goto("/login")
        await page.get_by_label("Логин").fill("manager")
        await page.get_by_label("Пароль").fill("manager")
        await page.get_by_role("button", name="Войти").click()
        await page.wait_for_selector("body[data-live='true']")
        await page.goto("/deals")
        await page.wait_for_selector("body[data-live='true']")
        await page.screenshot(path=OUT / f"deals{name}.png")
        if not name:
            await page.locator("#board .deal-card [data-move]").nth(1).click()
            dialog = page.locator("#move-dialog")
            await dialog.locator("select[name=stage_id]").select_option(index=2)
            await dialog.locator("textarea[name=result]").fill("Клиент ждёт КП до пятницы")
            await page.screenshot(path=OUT / "deals-move.png")
            await page.keyboard.press("Escape")
            await page.goto("/deals/list?order=next")
            await page.screenshot(path=OUT / "deals-list.png")
            await _day_one_shots(page)
        await context.close()


async def _day_one_shots(page: Any) -> None:
    """What a first working day reaches for: a deal made in a column, one search, a card's history,
    the likely duplicates, the list's mass actions; the menu at phone width is in the phone shots."""
    await page.goto("/deals")
    column = page.locator("#board .kcol.kind-active").nth(1)
    await column.locator(".kcol-new > summary").click()
    form = column.locator("form.deal-new")
    await form.locator("input[name=title]").fill("Поставка картриджей")
    await form.locator("input[name=q]").fill("ООО")
    await page.wait_for_timeout(800)
    await form.locator("input[name=amount]").fill("48 000")
    await page.screenshot(path=OUT / "deals-new.png")
    await page.goto("/deals")
    await page.keyboard.press("/")
    await page.keyboard.type("Федоров")
    await page.wait_for_timeout(900)
    await page.screenshot(path=OUT / "search.png")
    await page.goto("/deals/list?order=next")
    await page.locator("input[name=ids]").nth(0).check()
    await page.locator("input[name=ids]").nth(1).check()
    await page.screenshot(path=OUT / "deals-bulk.png")
    href = await page.locator("#deal-rows a[href^='/deals/']").first.get_attribute("href")
    await page.goto(f"{href}/history")
    await page.screenshot(path=OUT / "deal-history.png", full_page=True)
    await page.goto("/duplicates")
    await page.screenshot(path=OUT / "duplicates.png", full_page=True)


async def _task_report_shots(browser: Any, base: str) -> None:
    """The tasks (list, the edit dialog) and the reports (funnel, widgets) as a manager; the task list
    and the funnel at phone width too."""
    for name, width, height in (("", 1280, 860), ("-phone", 390, 844)):
        context = await browser.new_context(base_url=base, locale="ru-RU", device_scale_factor=1,
                                            viewport={"width": width, "height": height})
        page = await context.new_page()
        await page.goto("/login")
        await page.get_by_label("Логин").fill("manager")
        await page.get_by_label("Пароль").fill("manager")
        await page.get_by_role("button", name="Войти").click()
        await page.wait_for_selector("body[data-live='true']")
        await page.goto("/tasks")
        await page.wait_for_selector("body[data-live='true']")
        await page.screenshot(path=OUT / f"tasks{name}.png")
        if not name:
            await page.locator("li.task.overdue a.task-subject").first.click()
            await page.wait_for_selector("#task-form")
            await page.screenshot(path=OUT / "task-dialog.png")
            await page.keyboard.press("Escape")
        await page.goto("/reports/funnel?preset=year")
        await page.wait_for_selector("#funnel-chart[data-rendered]")
        await page.screenshot(path=OUT / f"reports-funnel{name}.png", full_page=not name)
        if not name:
            await page.goto("/reports/widgets?preset=year")
            await page.wait_for_selector("#widgets-chart[data-rendered]")
            await page.screenshot(path=OUT / "reports-widgets.png", full_page=True)
        await context.close()


async def _deal_card_shots(app: web.Application, browser: Any, base: str) -> None:
    """The deal card of agent1's busiest deal (a pinned note with a file, a call with a recording,
    the move dialog), and at phone width."""
    async with app[DB].transaction() as s:
        agent = await s.scalar(select(User).where(User.login == LOGIN))
        assert agent is not None
        busiest = (await s.execute(
            select(TimelineEntry.deal_id, func.count()).join(Deal, Deal.id == TimelineEntry.deal_id)
            .where(Deal.responsible_id == agent.id).group_by(TimelineEntry.deal_id)
            .order_by(func.count().desc(), TimelineEntry.deal_id).limit(1))).first()
        assert busiest is not None
        deal_id = busiest[0]
        note = await timeline.add_note(s, agent, "deal", deal_id, {"text": "Реквизиты и договор во вложении; "
                                                                  "оплата до 30-го числа", "pinned": True})
        await attachments.attach_to_entry(s, agent, note["id"], filename="Договор поставки.pdf",
                                          content_type="application/pdf", data=b"%PDF-1.4 demo" * 900,
                                          directory=app[CONFIG].server.attachments_dir, max_bytes=10_000_000)
        call = await timeline.add_entry(s, kind="call", direction="out", author_id=agent.id, deal_id=deal_id,
                                        payload={"status": "answered", "duration": 184})
        assert call is not None
        sound = io.BytesIO()
        with wave.open(sound, "wb") as w:  # three seconds of silence stand in for the recording
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(bytes(48000))
        recording = await attachments.attach_to_entry(
            s, agent, call.id, filename="call.wav", content_type="audio/wav", data=sound.getvalue(),
            directory=app[CONFIG].server.attachments_dir, max_bytes=10_000_000)
        call.payload = {**call.payload, "recording_url": recording["url"]}
        await s.flush()
    for name, width, height in (("", 1280, 860), ("-phone", 390, 844)):
        context = await browser.new_context(base_url=base, locale="ru-RU", device_scale_factor=1,
                                            viewport={"width": width, "height": height})
        page = await context.new_page()
        await page.goto("/login")
        await page.get_by_label("Логин").fill(LOGIN)
        await page.get_by_label("Пароль").fill(LOGIN)
        await page.get_by_role("button", name="Войти").click()
        await page.wait_for_selector("body[data-live='true']")
        await page.goto(f"/deals/{deal_id}")
        await page.wait_for_selector("body[data-live='true']")
        await page.screenshot(path=OUT / f"deal-card{name}.png", full_page=not name)
        if not name:
            await page.locator(".stage:not(.current) a.stage-step").last.click()
            await page.locator("#move-dialog textarea[name=result]").fill("Клиент выбрал другого поставщика")
            await page.screenshot(path=OUT / "deal-card-move.png")
            await page.keyboard.press("Escape")
        await context.close()


async def _call_shots(app: web.Application, browser: Any, base: str) -> None:
    """The screen-pop (a client of agent1's calling, an unknown number stacked above) and the call
    journal with answered, missed and outbound calls (one with a recording)."""
    from hub.crm import call_intake as intake
    from hub.crm.models import ContactPoint
    from hub.crm.ports import CallEndedFact, CallRinging, CallSettings

    ask = CallSettings(unknown_caller="ask")
    async with app[DB].reading() as s:
        agent = await s.scalar(select(User).where(User.login == LOGIN))
        assert agent is not None
        phones = (await s.scalars(select(ContactPoint.value).join(Client, Client.id == ContactPoint.client_id)
                                  .where(ContactPoint.kind == "phone", Client.manager_id == agent.id)
                                  .order_by(ContactPoint.id).limit(4))).all()
    now = datetime.now(UTC)
    for i, (number, status, direction, minutes) in enumerate((
            (phones[1], "answered", "inbound", 240), (phones[2], "missed", "inbound", 150),
            ("+74957771122", "abandoned", "inbound", 90), (phones[3], "answered", "outbound", 30))):
        at = now - timedelta(minutes=minutes)
        answered = at + timedelta(seconds=6) if status == "answered" else None
        await intake.call_ended(app[DB], CallEndedFact(
            call_key=f"shot-{i}", direction=direction, status=status, number=number,  # type: ignore[arg-type]
            did="+74951234567", agent_extension="101", started_at=at, answered_at=answered,
            ended_at=at + timedelta(seconds=200 if answered else 25), wait_seconds=6 if answered else 25,
            talk_seconds=194 if answered else 0, hangup_cause=16, rung_extensions=("101",)), ask)
    context = await browser.new_context(base_url=base, locale="ru-RU", device_scale_factor=1,
                                        viewport={"width": 1280, "height": 860})
    page = await context.new_page()
    await page.goto("/login")
    await page.get_by_label("Логин").fill(LOGIN)
    await page.get_by_label("Пароль").fill(LOGIN)
    await page.get_by_role("button", name="Войти").click()
    await page.wait_for_selector("body[data-live='true']")
    await page.wait_for_timeout(300)
    known = CallRinging(call_key="shot-pop-1", direction="inbound", number=phones[0], did="+74951234567",
                        extension="101")
    await intake.call_ringing(app[DB], known, ask)
    await intake.call_ringing(app[DB], CallRinging(call_key="shot-pop-2", direction="inbound",
                                                   number="+74993334455", did="+74951234567",
                                                   extension="101"), ask)
    await page.wait_for_function("document.querySelectorAll('.screenpop').length === 2")
    await page.wait_for_timeout(400)  # the popups' slide-in
    await page.screenshot(path=OUT / "screenpop.png")
    await page.goto("/calls")
    await page.screenshot(path=OUT / "calls-journal.png")
    await context.close()


def _picture(width: int = 320, height: int = 200) -> bytes:
    """A small PNG (a warm gradient with a darker band) standing in for a photo a client sent."""
    import struct
    import zlib

    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            band = 40 if height * 0.55 < y < height * 0.75 else 0
            rows += bytes((230 - y // 3 - band, 170 + x // 8 - band, 110 + x // 6 - band))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(rows))) + \
        chunk(b"IEND", b"")


async def _inbox_data(app: web.Application) -> int:
    """Conversations as the Telegram and SMS channels would take them in (through the CRM's message
    intake), agent1's replies with their delivery statuses, one refused; → the deal with a chat."""
    from sqlalchemy import update as sa_update

    from hub.crm import messages, outgoing
    from hub.crm.models import ContactPoint, Conversation, Message
    from hub.crm.ports import DeliveryStatus, InboundFile, InboundMessage

    intake = messages.MessageIntake(app[DB], attachments_dir=app[CONFIG].server.attachments_dir)
    now = datetime.now(UTC)
    async with app[DB].reading() as s:
        agent = await s.scalar(select(User).where(User.login == LOGIN))
        assert agent is not None
        found = (await s.execute(
            select(ContactPoint.value, Client.id).join(Client, Client.id == ContactPoint.client_id)
            .where(ContactPoint.kind == "phone", Client.manager_id == agent.id,
                   Client.id.in_(select(Deal.client_id).join(Stage, Stage.id == Deal.stage_id)
                                 .where(Deal.responsible_id == agent.id, Stage.kind == "active")))
            .order_by(ContactPoint.id))).all()
    rows = list({client: (phone, client) for phone, client in reversed(found)}.values())[::-1][:3]
    (phone, client_id), (phone2, _), (phone3, _) = rows

    async def sms(sid: str, number: str, text: str, minutes: int) -> dict[str, Any]:
        taken = await intake.received(InboundMessage(
            channel="sms", provider_id=sid, address=number, text=text, sender_name=number,
            at=now - timedelta(minutes=minutes)))
        assert taken is not None
        return taken

    async def reply(target: dict[str, Any], text: str, status: str, minutes: int,
                    error: str | None = None) -> None:
        async with app[DB].transaction() as s:
            user = await s.get(User, agent.id)
            assert user is not None
            queued = await messages.queue_message(s, user, {**target, "text": text})
            at = now - timedelta(minutes=minutes)  # as if written then
            await s.execute(sa_update(Message).where(Message.id == queued[0]["id"]).values(created_at=at))
            await s.execute(sa_update(TimelineEntry).where(TimelineEntry.id == queued[0]["entry_id"])
                            .values(occurred_at=at))
            await s.execute(sa_update(Conversation).where(Conversation.id == queued[0]["conversation_id"])
                            .values(last_message_at=at))
        provider_id = f"SMreply{queued[0]['id']}"
        if status == "queued":
            return
        async with app[DB].transaction() as s:
            await outgoing.record_outcome(s, queued[0]["id"], "sent" if status != "failed" else "failed",
                                          provider_id=provider_id, error=error)
        if status == "delivered":
            await intake.status(DeliveryStatus(channel=target["channel"], provider_id=provider_id,
                                               status="delivered"))

    theirs = {"channel": "sms", "client_id": client_id}
    await sms("SMshot1", phone, "Добрый день! Счёт получили, оплатим в пятницу. Можно отгрузку на "
              "понедельник?", 95)
    await reply(theirs, "Здравствуйте! Да, отгрузим в понедельник до 12:00.", "delivered", 90)
    await sms("SMshot2", phone, "Отлично, спасибо! И пришлите, пожалуйста, акт сверки.", 8)
    await reply(theirs, "Акт сверки отправлю сегодня до вечера.", "queued", 6)
    await sms("SMshot3", phone2, "Перезвоните, пожалуйста, по поводу доставки", 47)
    taken = await sms("SMshot4", phone3, "Нужна ли предоплата для нового заказа?", 180)
    await reply({"channel": "sms", "client_id": taken["person"]["client_id"]},
                "Для постоянных клиентов — без предоплаты.", "failed", 170,
                error="21614: the number is unreachable")
    tg = "6038471925"
    for i, (text, minutes, files) in enumerate((
            ("Здравствуйте! Нашла вас через сайт. Вот фото помещения, сможете посчитать стеллажи?", 25,
             (InboundFile(filename="склад.png", content_type="image/png", data=_picture()),)),
            ("Площадь примерно 120 м², высота потолка 6 м.", 24, ()))):
        await intake.received(InboundMessage(
            channel="telegram", provider_id=f"{tg}:{i + 1}", address=tg, text=text,
            sender_name="Анна Соколова", sender_id=tg, username="anna_sokolova",
            at=now - timedelta(minutes=minutes), files=files))
    last = await sms("SMshot5", phone, "И ещё: счёт-фактуру можно в оригинале?", 2)
    return int(last["entry"]["deal_id"])


async def _inbox_shots(app: web.Application, browser: Any, base: str) -> None:
    """/inbox with a client's SMS conversation open (delivered, queued and incoming messages), an
    unknown Telegram sender with a photo, a refused SMS; and the deal card's chat composer."""
    deal_id = await _inbox_data(app)
    context = await browser.new_context(base_url=base, locale="ru-RU", device_scale_factor=1,
                                        viewport={"width": 1280, "height": 860})
    page = await context.new_page()
    await page.goto("/login")
    await page.get_by_label("Логин").fill(LOGIN)
    await page.get_by_label("Пароль").fill(LOGIN)
    await page.get_by_role("button", name="Войти").click()
    await page.wait_for_selector("body[data-live='true']")
    await page.goto("/inbox")
    await page.locator(".conv-link", has_text="И ещё: счёт-фактуру").click()
    await page.wait_for_selector("#chat[data-conversation-id]")
    await page.locator("#chat textarea").fill("Да, оригинал передадим с водителем.")
    await page.wait_for_timeout(300)
    await page.screenshot(path=OUT / "inbox.png")
    await page.goto("/inbox?f=all")
    await page.locator(".conv-link", has_text="Анна Соколова").click()
    await page.wait_for_selector("#chat .msg-image")
    await page.wait_for_timeout(300)
    await page.screenshot(path=OUT / "inbox-telegram.png")
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.goto("/inbox")
    await page.locator(".conv-link", has_text="Анна Соколова").click()
    await page.wait_for_selector("#chat .msg-image")
    await page.wait_for_timeout(300)
    await page.screenshot(path=OUT / "inbox-phone.png")
    await page.set_viewport_size({"width": 1280, "height": 1100})
    await page.goto(f"/deals/{deal_id}")
    await page.wait_for_selector("body[data-live='true']")
    await page.locator(".composer textarea").fill("Да, оригинал передадим с водителем вместе с товаром.")
    await page.evaluate("window.scrollTo(0, document.querySelector('.deal-grid').offsetTop - 70)")
    await page.screenshot(path=OUT / "deal-card-chat.png")
    await context.close()


def _letter(sender: str, name: str, deal_subject: str, picture: bytes) -> bytes:
    """A client's answer to our letter as a mail client writes it: plain text with the quoted history,
    an HTML part with a table, an inline photo (cid:) and a remote logo (never loaded unasked)."""
    from email.message import EmailMessage
    from email.utils import format_datetime, make_msgid

    m = EmailMessage()
    m["From"] = f"{name} <{sender}>"
    m["To"] = "Комфорт Дом — заявки <zayavki@crm.example.ru>"
    m["Subject"] = f"RE: {deal_subject}"
    m["Message-ID"] = make_msgid(domain=sender.split("@")[1])
    m["Date"] = format_datetime(datetime.now(UTC) - timedelta(minutes=4))
    new = ("Добрый день!\n\nКП получили, спасибо. Согласны на вариант с профилем REHAU Blitz и монтажом "
           "в два дня. Фото проёма в переговорной — во вложении: там батарея под окном, учтите, "
           "пожалуйста, при замере.\n\nС уважением,\n" + name)
    quote = ("\n\n-----Исходное сообщение-----\nОт: Комфорт Дом — заявки <zayavki@crm.example.ru>\n"
             f"Тема: {deal_subject}\n\nЗдравствуйте!\n\nНаправляем коммерческое предложение на замену "
             "14 окон: профиль REHAU Blitz, стеклопакет двухкамерный, монтаж по ГОСТ, вывоз старых рам.\n"
             "Итого: 412 600 ₽ с НДС.\n\n— Комфорт Дом")
    m.set_content(new + quote)
    m.add_alternative(
        "<p>Добрый день!</p><p>КП получили, спасибо. Согласны на вариант с профилем <b>REHAU Blitz</b> и "
        "монтажом в два дня.</p><table><tr><th>Помещение</th><th>Окон</th><th>Открывание</th></tr>"
        "<tr><td>Переговорная</td><td>4</td><td>поворотно-откидное</td></tr>"
        "<tr><td>Open space</td><td>8</td><td>глухие + 2 створки</td></tr>"
        "<tr><td>Кабинет</td><td>2</td><td>поворотно-откидное</td></tr></table>"
        "<p>Фото проёма в переговорной — там батарея под окном:</p><p><img src=\"cid:proem@client\" "
        "alt=\"Фото проёма\" width=\"320\" height=\"200\"></p>"
        f"<p>С уважением,<br>{name}</p><p><img src=\"https://stroyinvest.example.ru/mail/logo.png\" "
        "alt=\"Логотип компании\" width=\"160\" height=\"40\"></p>"
        "<blockquote><p>Направляем коммерческое предложение на замену 14 окон…</p></blockquote>",
        subtype="html")
    m.get_payload()[1].add_related(picture, "image", "png", cid="<proem@client>", filename="проём.png")
    return bytes(m)


async def _mail_data(app: web.Application) -> int:
    """A letter with HTML, an inline photo, a remote logo and a quoted history, taken in as the mail
    channel takes it, on a deal of agent1's; → the deal."""
    from hub.config import MailboxConfig
    from hub.crm import messages
    from hub.crm.models import ContactPoint
    from hub.mail import channel, parse

    async with app[DB].reading() as s:
        agent = await s.scalar(select(User).where(User.login == LOGIN))
        assert agent is not None
        sender = await s.scalar(
            select(ContactPoint.value).join(Client, Client.id == ContactPoint.client_id)
            .where(ContactPoint.kind == "email", Client.kind == "company",
                   Client.id.in_(select(Deal.client_id).join(Stage, Stage.id == Deal.stage_id)
                                 .where(Deal.responsible_id == agent.id, Stage.kind == "active")))
            .order_by(ContactPoint.id.desc()).limit(1))
    assert sender is not None
    raw = _letter(sender, "Мария Орлова", "Коммерческое предложение: замена 14 окон в офисе", _picture())
    intake = messages.MessageIntake(app[DB], attachments_dir=app[CONFIG].server.attachments_dir)
    taken = await intake.received(channel.inbound(parse.parse(raw), raw, MailboxConfig(
        name="zayavki", from_address="zayavki@crm.example.ru")))
    assert taken is not None and taken["entry"] is not None
    return int(taken["entry"]["deal_id"])


async def _mail_shots(app: web.Application, browser: Any, base: str) -> None:
    """A letter in the deal card (quote unfolded, the HTML version open), the e-mail composer
    answering it, and /inbox with the letter's conversation."""
    deal_id = await _mail_data(app)
    context = await browser.new_context(base_url=base, locale="ru-RU", device_scale_factor=1,
                                        viewport={"width": 1280, "height": 1000})
    page = await context.new_page()
    await page.goto("/login")
    await page.get_by_label("Логин").fill(LOGIN)
    await page.get_by_label("Пароль").fill(LOGIN)
    await page.get_by_role("button", name="Войти").click()
    await page.wait_for_selector("body[data-live='true']")
    await page.goto(f"/deals/{deal_id}?tl=emails")
    await page.wait_for_selector("body[data-live='true']")
    entry = page.locator(".tl-stream .tl-entry.tl-email").first
    await entry.get_by_text("показать цитату").click()
    await entry.get_by_role("button", name="HTML-версия").click()
    await page.wait_for_timeout(500)
    await page.evaluate("document.querySelector('.tl-stream .tl-entry.tl-email').scrollIntoView()")
    await page.evaluate("window.scrollBy(0, -80)")
    await page.screenshot(path=OUT / "deal-card-letter.png")
    await entry.get_by_role("button", name="Ответить").click()
    await page.locator(".composer textarea").fill("Мария, добрый день! Батарею учтём: замерщик приедет в "
                                                  "четверг с 10:00, возьмёт образцы подоконников.")
    await page.evaluate("window.scrollTo(0, document.querySelector('.composer').getBoundingClientRect().top"
                        " + window.scrollY - 330)")
    await page.screenshot(path=OUT / "email-composer.png")
    await page.goto("/inbox?channel=email")
    await page.locator(".conv-link", has_text="Коммерческое предложение").first.click()
    await page.wait_for_selector("#chat[data-conversation-id]")
    await page.wait_for_timeout(300)
    await page.screenshot(path=OUT / "inbox-email.png")
    await context.close()


WHATSAPP_TEMPLATES = [
    {"sid": "HXb5b62575e6e4ff6129ad7c8efe1f983e", "name": "Напоминание о замере",
     "text": "Здравствуйте, {{1}}! Напоминаем о замере {{2}}. Если время не подходит, ответьте на это "
             "сообщение."},
    {"sid": "HX350d429d32e64a552466cafecbe95f3c", "name": "Спасибо за заказ",
     "text": "{{1}}, спасибо за заказ! Менеджер свяжется с вами в течение часа."},
]


async def _whatsapp_shots(app: web.Application, browser: Any, base: str) -> None:
    """/inbox with a WhatsApp conversation whose 24-hour window has closed: the composer offers only
    the approved templates, one chosen with its variables filled in."""
    from sqlalchemy import update as sa_update

    from hub.crm import messages
    from hub.crm.models import Conversation, Message
    from hub.crm.ports import InboundMessage

    intake = messages.MessageIntake(app[DB], attachments_dir=app[CONFIG].server.attachments_dir)
    now = datetime.now(UTC)
    taken = await intake.received(InboundMessage(
        channel="whatsapp", provider_id="SMwa1", address="+79161234567", sender_name="Ольга Миронова",
        text="Добрый вечер! Хочу заказать замер окон в квартире, 3 окна и балкон.",
        at=now - timedelta(hours=27)))
    assert taken is not None
    async with app[DB].transaction() as s:  # as if it came 27 hours ago
        await s.execute(sa_update(Message).where(Message.id == taken["id"]).values(
            created_at=now - timedelta(hours=27)))
        await s.execute(sa_update(Conversation).where(Conversation.id == taken["conversation_id"]).values(
            last_message_at=now - timedelta(hours=27)))
    await intake.received(InboundMessage(
        channel="whatsapp", provider_id="SMwa2", address="+79057654321", sender_name="Сергей",
        text="Спасибо, получил. Жду мастера в субботу.", at=now - timedelta(minutes=14)))
    context = await browser.new_context(base_url=base, locale="ru-RU", device_scale_factor=1,
                                        viewport={"width": 1280, "height": 860})
    page = await context.new_page()
    await _log_in(page)
    await page.goto("/inbox?channel=whatsapp")
    await page.locator(".conv-link", has_text="Хочу заказать замер").click()
    await page.wait_for_selector("#chat [data-template-row]")
    await page.locator("#chat [data-template-select]").select_option(WHATSAPP_TEMPLATES[0]["sid"])
    variables = page.locator("#chat [data-template-vars]:not([hidden])")
    await variables.locator("input[name=template_var_1]").fill("Ольга")
    await variables.locator("input[name=template_var_2]").fill("в субботу с 10:00 до 12:00")
    await page.wait_for_timeout(300)
    await page.screenshot(path=OUT / "inbox-whatsapp.png")
    await context.close()


async def _presence_shots(app: web.Application, browser: Any, base: str) -> None:
    """The header's «Кто свободен» open, the phones' states as the PBX would report them."""
    from hub.crm import presence

    board = app[PRESENCE]
    async with app[DB].reading() as s:
        board.set_owners(await presence.owners(s))
    board.phones_changed({"101": "free", "102": "on_call"}, complete=True)
    context = await browser.new_context(base_url=base, locale="ru-RU", device_scale_factor=1,
                                        viewport={"width": 1280, "height": 640})
    page = await context.new_page()
    await _log_in(page)
    await page.locator("#presence summary").click()
    await page.wait_for_selector("#presence .presence-item")
    await page.wait_for_timeout(300)
    await page.screenshot(path=OUT / "presence.png")
    await context.close()


async def _log_in(page: Any) -> None:
    await page.goto("/login")
    await page.get_by_label("Логин").fill(LOGIN)
    await page.get_by_label("Пароль").fill(LOGIN)
    await page.get_by_role("button", name="Войти").click()
    await page.wait_for_selector("body[data-live='true']")


async def main() -> int:
    groups = set(sys.argv[1:])
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        config = Config()
        config.database.url = f"sqlite+aiosqlite:///{tmp}/demo.db"
        config.server.secret_key = "screenshots"
        config.server.attachments_dir = f"{tmp}/attachments"
        # the Twilio channel configured (nothing is sent: its API is a closed port), for WhatsApp
        config.server.public_url = "https://crm.example.ru"
        config.twilio = TwilioConfig(account_sid="AC" + "0" * 32, auth_token="screenshots",
                                     from_number="+16282904173", api_url="http://127.0.0.1:9",
                                     whatsapp_from="whatsapp:+14155238886",
                                     whatsapp_templates=WHATSAPP_TEMPLATES)
        app = create_app(config)
        app[PRESENCE] = PresenceBoard(app[BUS].publish)  # as if the PBX were connected
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        try:
            await demo.fill(app[DB], attachments_dir=config.server.attachments_dir)
            await _channel_like_data(app)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
                for name, width, height in (() if groups else (("", 1280, 860), ("-phone", 390, 844))):
                    context = await browser.new_context(base_url=base, locale="ru-RU", device_scale_factor=1,
                                                        viewport={"width": width, "height": height})
                    page = await context.new_page()
                    await page.goto("/login")
                    await page.screenshot(path=OUT / f"login{name}.png")
                    await page.get_by_label("Логин").fill(LOGIN)
                    await page.get_by_label("Пароль").fill(LOGIN)
                    await page.get_by_role("button", name="Войти").click()
                    await page.wait_for_selector("body[data-live='true']")
                    await page.screenshot(path=OUT / f"desktop{name}.png", full_page=True)
                    if not name:
                        await page.locator("#bell summary").click()
                        await page.wait_for_selector("#bell .dropdown")
                        await page.screenshot(path=OUT / "bell.png")
                        await page.goto("/calls")
                        await page.screenshot(path=OUT / "calls.png")
                    await context.close()
                if not groups:
                    await _settings_shots(browser, base)
                    await _client_shots(browser, base)
                    await _task_report_shots(browser, base)
                    await _deals_shots(browser, base)
                    await _deal_card_shots(app, browser, base)
                    await _call_shots(app, browser, base)
                if not groups or "inbox" in groups:
                    await _inbox_shots(app, browser, base)
                if not groups or "mail" in groups:
                    await _mail_shots(app, browser, base)
                if not groups or "whatsapp" in groups:
                    await _whatsapp_shots(app, browser, base)
                if not groups or "presence" in groups:
                    await _presence_shots(app, browser, base)
                await browser.close()
        finally:
            await runner.cleanup()
    for path in sorted(OUT.glob("*.png")):
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
