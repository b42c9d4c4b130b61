"""Letters in the web UI, on each test database: a letter parsed as the mail channel parses it (a
hostile HTML part: a script, a remote image, an inline cid: image; a quoted history) rendered in the
deal card and the inbox's chat — subject, folded quote, the HTML version's data without scripts and
without loadable remote images; the e-mail composer; letters kept out of the timeline."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from hub.config import MailboxConfig
from hub.crm.messages import MessageIntake
from hub.crm.ports import InboundMessage
from hub.mail import channel, parse
from hub.web.keys import CONFIG, DB
from tests.integration.conftest import Api
from tests.integration.test_api_messages import PNG
from tests.integration.test_web_deal_card import page
from tests.integration.test_web_pages import logged_in

MAILBOX = MailboxConfig(name="zayavki", from_address="zayavki@crm.example.ru")
HOSTILE_HTML = (
    '<p>Да, суббота <b>подходит</b>. Подъезд со двора.</p><script>alert("взлом")</script>'
    '<img src="https://tracker.example.ru/open.png" width="300" height="80" alt="баннер" onerror="alert(2)">'
    '<img src="cid:plan@anna" alt="план"><blockquote>Готовы приехать в субботу с 14:00.</blockquote>'
)


def raw_letter(message_id: str = "<reply-1@mail.ru>", subject: str = "RE: Замер окон на Лесном") -> bytes:
    m = EmailMessage()
    m["From"] = "Анна Соколова <anna.sokolova@mail.ru>"
    m["To"] = "Комфорт Дом <zayavki@crm.example.ru>"
    m["Subject"] = subject
    m["Message-ID"] = message_id
    m["Date"] = format_datetime(datetime(2030, 6, 15, 9, 0, tzinfo=UTC))
    m.set_content("Да, суббота подходит. Подъезд со двора.\n\nАнна\n\n"
                  "-----Исходное сообщение-----\nОт: Комфорт Дом\nТема: Замер окон на Лесном\n\n"
                  "Готовы приехать в субботу с 14:00.\n")
    m.add_alternative(HOSTILE_HTML, subtype="html")
    m.get_payload()[1].add_related(PNG, "image", "png", cid="<plan@anna>", filename="план.png")
    return bytes(m)


async def letter_in(app: web.Application, raw: bytes) -> dict[str, Any]:
    intake = MessageIntake(app[DB], attachments_dir=app[CONFIG].server.attachments_dir)
    taken = await intake.received(channel.inbound(parse.parse(raw), raw, MAILBOX))
    assert taken is not None
    return taken


async def anna_with_deal(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    client = await api.post("/api/v1/clients", {"name": "Анна Соколова", "kind": "person",
                                                "emails": ["anna.sokolova@mail.ru"]}, expect=201)
    deal = await api.post("/api/v1/deals", {"title": "Остекление балкона", "client_id": client["id"]},
                          expect=201)
    return client, deal


def letter_html(html: str) -> str:
    """The data-html attribute of the first letter, unescaped as the browser reads it."""
    found = re.search(r'data-html="([^"]*)"', html)
    assert found, "no letter HTML on the page"
    return found.group(1).replace("&#34;", '"').replace("&quot;", '"').replace("&lt;", "<") \
        .replace("&gt;", ">").replace("&#39;", "'").replace("&amp;", "&")


async def test_a_letter_in_the_deal_card_and_the_chat(client: TestClient, app: web.Application,
                                                      agent: Api) -> None:
    _person, deal = await anna_with_deal(agent)
    taken = await letter_in(app, raw_letter())
    entry = taken["entry"]
    assert entry["deal_id"] == deal["id"] and entry["payload"]["full_text"]
    [plan] = entry["attachments"]  # the inline image is stored
    await logged_in(client, agent)
    html = await page(client, f"/deals/{deal['id']}")
    # subject (bold), sender, the new text, the quoted history folded behind its toggle
    assert '<p class="letter-subject">RE: Замер окон на Лесном</p>' in html
    assert "Анна Соколова &lt;anna.sokolova@mail.ru&gt;" in html
    assert re.search(r'class="tl-text tl-prose letter-text">Да, суббота подходит\. Подъезд со двора\.', html)
    assert re.search(r"<details class=\"letter-quote\">\s*<summary>показать цитату</summary>", html)
    assert "Готовы приехать в субботу с 14:00." in html.split("<summary>показать цитату</summary>")[1]
    # the HTML version: offered, built by the browser; no script and nothing remote loadable
    assert "HTML-версия" in html and "показать изображения" in html
    assert "alert(" not in html and "&lt;script" not in html and "onerror" not in html
    assert 'src="http' not in html
    letter = letter_html(html)
    assert "<script" not in letter and "alert" not in letter
    assert 'data-remote-src="https://tracker.example.ru/open.png"' in letter
    assert not re.search(r'(?<!data-remote-)src="https?:', letter)
    assert 'src="cid:plan@anna"' in letter
    cids = json.loads(re.search(r"data-cids='([^']*)'", html).group(1))  # type: ignore[union-attr]
    assert cids == {"plan@anna": plan["id"]}
    # a reply: the Reply button answers this letter with "Re: …" (no "Re: RE:")
    assert re.search(f'data-reply="{entry["id"]}" data-reply-channel="email"[^>]*'
                     'data-reply-subject="RE: Замер окон на Лесном"', html)
    # the composer offers e-mail to her address, the Subject field hidden until e-mail is chosen
    assert re.search(r'<input type="radio" name="channel" value="email" checked>', html)
    assert re.search(r'<div class="composer-subject" data-subject-row>', html)

    # the inbox: the conversation shows the subject; its chat shows the letter too
    inbox = await page(client, "/inbox")
    assert '<span class="conv-subject">RE: Замер окон на Лесном</span>' in inbox
    chat = await page(client, f"/inbox/c/{taken['conversation_id']}")
    assert '<p class="letter-subject">RE: Замер окон на Лесном</p>' in chat
    assert "показать цитату" in chat and "HTML-версия" in chat and 'src="http' not in chat
    # its composer answers the latest letter by default
    assert f'name="reply_to" value="{entry["id"]}"' in chat
    assert re.search(r'name="subject" maxlength="500" value="RE: Замер окон на Лесном"', chat)


async def test_automated_and_undelivered_letters_are_marked(client: TestClient, app: web.Application,
                                                            agent: Api) -> None:
    person, deal = await anna_with_deal(agent)
    intake = MessageIntake(app[DB], attachments_dir=app[CONFIG].server.attachments_dir)
    await intake.received(InboundMessage(
        channel="email", provider_id="<auto-1@mail.ru>", address="anna.sokolova@mail.ru",
        sender_name="Анна Соколова", subject="Автоответ: Замер", text="Я в отпуске до 30 ноября.",
        lead_allowed=False, extra={"automated": ["Auto-Submitted: auto-replied"]}))
    sent = await agent.post("/api/v1/messages", {"channel": "email", "deal_id": deal["id"],
                                                 "subject": "Смета", "text": "Смета во вложении"}, expect=201)
    async with app[DB].transaction() as s:
        from hub.crm import outgoing

        await outgoing.record_outcome(s, sent["id"], "sent", provider_id="<out-1@crm.example.ru>")
    await intake.received(InboundMessage(
        channel="email", provider_id="<bounce-1@mx>", address="mailer-daemon@mx.example.ru",
        subject="Undelivered Mail Returned to Sender", text="…", lead_allowed=False,
        bounce_of="<out-1@crm.example.ru>", bounce_reason="anna.sokolova@mail.ru: 550 5.1.1 User unknown"))
    await logged_in(client, agent)
    html = await page(client, f"/deals/{deal['id']}")
    assert "автоматическое письмо" in html and 'title="Auto-Submitted: auto-replied"' in html
    mine = html[html.index('<p class="letter-subject">Смета</p>'):]
    mine = mine[:mine.index("</li>")]
    assert "не доставлено: anna.sokolova@mail.ru: 550 5.1.1 User unknown" in mine
    assert "Кому:</span> anna.sokolova@mail.ru" in mine and f'data-retry="{sent["id"]}"' in mine
    # the address itself is marked, on the card and in the composer, until it is changed
    card = await page(client, f"/clients/{person['id']}")
    assert re.search(r'class="point-bounced" title="anna.sokolova@mail.ru: 550 5.1.1 User unknown">'
                     r"⚠ письма возвращаются \(\d\d\.\d\d\.\d{4} \d\d:\d\d\)", card)
    assert re.search(r'class="small channel-bounced" title="[^"]*User unknown">'
                     "⚠ письма на этот адрес возвращались", html)


async def test_a_letter_kept_out_of_the_timeline_lists_in_the_chat_and_becomes_a_lead(
        client: TestClient, app: web.Application, agent: Api) -> None:
    intake = MessageIntake(app[DB], attachments_dir=app[CONFIG].server.attachments_dir)
    taken = await intake.received(InboundMessage(
        channel="email", provider_id="<news-1@shop.example.ru>", address="noreply@okna-opt.example.ru",
        sender_name="Оконный опт", subject="Прайс на профиль REHAU", text="Новые цены с 1 декабря.",
        lead_allowed=False))
    assert taken is not None and taken["entry"] is None
    await logged_in(client, agent)
    chat = await page(client, f"/inbox/c/{taken['conversation_id']}")
    assert "Прайс на профиль REHAU" in chat and "Новые цены с 1 декабря." in chat
    assert "не в ленте" in chat and f'data-make-lead="{taken["conversation_id"]}"' in chat
    assert "Создать лид" in chat and "data-compose" not in chat
    made = await agent.post(f"/api/v1/conversations/{taken['conversation_id']}/lead", expect=201)
    chat = await page(client, f"/inbox/c/{taken['conversation_id']}")
    assert "Создать лид" not in chat and "data-compose" in chat and "не в ленте" not in chat
    assert f'href="/leads/{made["lead"]["id"]}"' in chat


async def test_the_chat_shows_older_messages_on_request(client: TestClient, app: web.Application,
                                                       agent: Api) -> None:
    await anna_with_deal(agent)
    intake = MessageIntake(app[DB], attachments_dir=app[CONFIG].server.attachments_dir)
    for n in range(53):
        taken = await intake.received(InboundMessage(
            channel="email", provider_id=f"<m{n}@mail.ru>", address="anna.sokolova@mail.ru",
            sender_name="Анна Соколова", subject=f"Письмо №{n}", text=f"Текст письма №{n}."))
    assert taken is not None
    await logged_in(client, agent)
    chat = await page(client, f"/inbox/c/{taken['conversation_id']}")
    assert "Письмо №52" in chat and "Письмо №3<" in chat and "Письмо №2<" not in chat
    older = re.search(r'hx-get="(/inbox/c/\d+\?cursor=[^"]+)"[^>]*data-chat-older>Показать более ранние<',
                      chat)
    assert older, "no link to the older messages"
    rest = await page(client, older.group(1).replace("&amp;", "&"), headers={"HX-Request": "true"})
    assert "Письмо №0<" in rest and "Письмо №2<" in rest and "Письмо №3<" not in rest
    assert "data-chat-older" not in rest and "<html" not in rest


async def test_the_inbox_head_rereads_the_channels_states(client: TestClient, app: web.Application,
                                                          agent: Api) -> None:
    from hub.web.keys import CHANNELS
    from tests.integration.test_web_pages import page as raw

    states = {"mail:zayavki": "connecting", "telegram": "polling"}
    app[CHANNELS]["mail:zayavki"] = lambda: states["mail:zayavki"]
    app[CHANNELS]["telegram"] = lambda: states["telegram"]
    await raw(client, "/inbox/channels", 303)  # not logged in: to the login page
    await logged_in(client, agent)
    html = await raw(client, "/inbox")
    assert 'hx-get="/inbox/channels"' in html and 'hx-trigger="every 15s"' in html
    assert re.search(r'channel-state bad" title="connecting">✉ zayavki: подключается', html)
    states["mail:zayavki"] = "auth_failed: AUTHENTICATIONFAILED Authentication failed."
    states["telegram"] = "webhook"
    fragment = await raw(client, "/inbox/channels")
    assert "<html" not in fragment and "{#" not in fragment
    # the state as a word of the reader's language; the adapter's own text in the tooltip
    assert re.search(r'channel-state bad" title="auth_failed: AUTHENTICATIONFAILED[^"]*">'
                     r'✉ zayavki: вход отклонён', fragment)
    assert re.search(r'class="channel-state" title="webhook">Telegram: приём \(вебхук\)', fragment)
