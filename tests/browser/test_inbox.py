"""In a real browser: messages taken in by the CRM's message intake (as the Telegram and SMS channels
do) appear live in /inbox and in the deal card; the agent's reply from a composer is a queued outgoing
message shown with its status, which follows the channel's reports (delivered; failed → retry)."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import select

from hub.crm import messages
from hub.crm.models import Message
from hub.crm.outgoing import record_outcome
from hub.crm.ports import DeliveryStatus, InboundMessage
from hub.web.keys import CONFIG, DB
from tests.browser.test_deal_card import HubApi
from tests.browser.test_foundation import log_in
from tests.integration.conftest import make_user

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture says why: skipped, or failed with CI=true
    expect = None


def intake(app: web.Application) -> messages.MessageIntake:
    return messages.MessageIntake(app[DB], attachments_dir=app[CONFIG].server.attachments_dir)


async def sms(app: web.Application, sid: str, text: str, phone: str = "+79161234567") -> None:
    taken = await intake(app).received(
        InboundMessage(channel="sms", provider_id=sid, address=phone, text=text, sender_name=phone)
    )
    assert taken is not None


async def outgoing(app: web.Application, text: str) -> Message:
    async with app[DB].reading() as s:
        found = await s.scalar(select(Message).where(Message.direction == "out", Message.text == text))
    assert found is not None, f"no outgoing message {text!r}"
    return found


async def report(app: web.Application, message_id: int, status: str, error: str | None = None) -> None:
    """What the outbox and the channel's status callback do with a message."""
    provider_id = f"SMout{message_id}"
    async with app[DB].transaction() as s:
        await record_outcome(
            s, message_id, "sent" if status == "delivered" else status, provider_id=provider_id, error=error
        )
    if status == "delivered":
        await intake(app).status(DeliveryStatus(channel="sms", provider_id=provider_id, status="delivered"))


async def test_inbox_and_deal_card_live_with_replies_and_statuses(
    page: Any, app: web.Application, hub_url: str
) -> None:
    await make_user(app, "agent", "agent", "Иван Агентов")
    async with aiohttp.ClientSession() as http:
        agent = await HubApi.login(http, hub_url, "agent")
        client = await agent.call(
            "POST", "/api/v1/clients", {"name": "ООО «Ромашка»", "phones": ["+7 916 123-45-67"]}, 201
        )
        deal = await agent.call(
            "POST", "/api/v1/deals", {"title": "Поставка бумаги", "client_id": client["id"]}, 201
        )

    await log_in(page, "agent")
    await page.get_by_role("link", name="Входящие").click()
    await expect(page.get_by_role("heading", name="Входящие", level=1)).to_be_visible()
    await expect(page.get_by_text("Здесь пока нет переписок.")).to_be_visible()
    await expect(page.locator("body")).to_have_attribute("data-live", "true")
    await page.evaluate("window.__sameDocument = true")

    # a message arrives: the conversation appears with its unread count, without a reload
    await sms(app, "SM1", "Добрый день! Когда отгрузка?")
    row = page.locator(".conv", has_text="ООО «Ромашка»")
    await expect(row).to_contain_text("Добрый день! Когда отгрузка?")
    await expect(row.locator(".conv-unread")).to_have_text(re.compile(r"^1"))
    await sms(app, "SM2", "И счёт, пожалуйста")
    await expect(row.locator(".conv-unread")).to_have_text(re.compile(r"^2"))
    await expect(row).to_contain_text("И счёт, пожалуйста")

    # open it: the chat, read (the badge goes), the card and the deal linked
    await row.locator(".conv-link").click()
    chat = page.locator("#chat")
    await expect(chat.locator(".msg-in")).to_have_count(2)
    await expect(chat.get_by_role("link", name="Открыть карточку")).to_have_attribute(
        "href", f"/clients/{client['id']}"
    )
    await expect(chat.get_by_role("link", name="Открыть сделку")).to_have_attribute(
        "href", f"/deals/{deal['id']}"
    )
    await expect(row.locator(".conv-unread")).to_have_count(0)
    assert await page.evaluate("window.__sameDocument") is True

    # the reply: Enter sends, the bubble is queued; the channel's reports move its status on
    text = chat.locator("textarea[name=text]")
    await text.fill("Отгрузим в понедельник")
    await text.press("Shift+Enter")
    await text.type("до обеда.")
    await text.press("Enter")
    bubble = chat.locator(".msg-out", has_text="Отгрузим в понедельник")
    await expect(bubble).to_contain_text("в очереди")
    await expect(text).to_have_value("")
    sent = await outgoing(app, "Отгрузим в понедельник\nдо обеда.")
    assert sent.status == "queued" and sent.channel == "sms"
    await report(app, sent.id, "delivered")
    await expect(bubble).to_contain_text("✓✓ доставлено")

    # a new message while the chat is open shows up in it
    await sms(app, "SM3", "Спасибо!")
    await expect(chat.locator(".msg-in", has_text="Спасибо!")).to_be_visible()
    # and so does a reply sent elsewhere (the deal card, the API)
    async with aiohttp.ClientSession() as http:
        api = await HubApi.login(http, hub_url, "agent")
        await api.call(
            "POST", "/api/v1/messages", {"channel": "sms", "deal_id": deal["id"], "text": "Из API"}, 201
        )
    await expect(chat.locator(".msg-out", has_text="Из API")).to_contain_text("в очереди")

    # the deal card: the messages in the timeline, live; the composer sends by SMS
    await page.goto(f"/deals/{deal['id']}")
    await expect(page.locator("body")).to_have_attribute("data-live", "true")
    stream = page.locator(".tl-stream")
    delivered = stream.locator(".tl-entry", has_text="Отгрузим в понедельник")
    await expect(delivered).to_contain_text("SMS · исходящий")
    await expect(delivered).to_contain_text("✓✓ доставлено")
    await expect(stream.locator(".tl-entry", has_text="Добрый день! Когда отгрузка?")).to_contain_text(
        "SMS · входящий"
    )
    await sms(app, "SM4", "Жду звонка")
    await expect(stream.locator(".tl-entry").first).to_contain_text("Жду звонка")

    composer = page.locator(".composer")
    await expect(composer.locator("input[name=channel][value=sms]")).to_be_checked()
    await expect(composer).to_contain_text("Нет Telegram.")
    await composer.locator("textarea").fill("Позвоню через час")
    await composer.locator("textarea").press("Enter")
    await expect(composer.locator("[data-compose-status]")).to_have_text("Поставлено в очередь на отправку.")
    mine = stream.locator(".tl-entry", has_text="Позвоню через час")
    await expect(mine).to_contain_text("SMS · исходящий")
    await expect(mine).to_contain_text("в очереди")

    # a refusal is shown with its reason and a retry button, which queues it again
    refused = await outgoing(app, "Позвоню через час")
    await report(app, refused.id, "failed", error="21211: invalid phone number")
    await expect(mine).to_contain_text("не доставлено: 21211: invalid phone number")
    await mine.get_by_role("button", name="Повторить").click()
    await expect(mine).to_contain_text("в очереди")
    await expect(mine.get_by_role("button", name="Повторить")).to_have_count(0)

    # an empty message is not sent: said next to the composer
    await composer.get_by_role("button", name="Отправить").click()
    await expect(composer.locator("[data-compose-status]")).to_have_text("Напишите текст или выберите файл.")

    # a message moved to the person's other open deal leaves this timeline and joins that one, live
    async with aiohttp.ClientSession() as http:
        api = await HubApi.login(http, hub_url, "agent")
        other = await api.call(
            "POST", "/api/v1/deals", {"title": "Вторая поставка", "client_id": client["id"]}, 201
        )
    await page.reload()
    await expect(page.locator("body")).to_have_attribute("data-live", "true")
    entry = stream.locator(".tl-entry", has_text="Жду звонка")
    await expect(entry.locator("select[name=deal_id] option")).to_have_text(["Вторая поставка"])
    await entry.get_by_role("button", name="Перенести в эту сделку").click()
    await expect(stream.locator(".tl-entry", has_text="Жду звонка")).to_have_count(0)
    await page.goto(f"/deals/{other['id']}")
    await expect(page.locator(".tl-stream .tl-entry", has_text="Жду звонка")).to_contain_text(
        "SMS · входящий"
    )
