"""hub.mail.parse on the 15 fixture letters (their README and expected.json are the answer key) and on
hostile letters built here: no From, garbage, a 20 MB attachment, nested letters, raw 8-bit headers."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from hub.mail.parse import ParsedLetter, fold_quotes, parse, sanitize_html, thread_ids
from tests.paths import MAIL_FIXTURES

FIXTURES = MAIL_FIXTURES
if not (FIXTURES / "expected.json").exists():  # pragma: no cover
    pytest.skip(f"no mail fixtures at {FIXTURES}", allow_module_level=True)
EXPECTED: dict[str, dict] = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))


def letter(name: str) -> ParsedLetter:
    return parse((FIXTURES / name).read_bytes())


# --------------------------------------------------------------------------- table over expected.json


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_matches_answer_key(name: str) -> None:
    exp = EXPECTED[name]
    got = letter(name)
    # addresses are lower-cased lookup keys (the key writes MAILER-DAEMON@…)
    assert got.from_addr == exp["from_addr"].lower()
    assert got.from_name == exp["from_name"]
    assert got.subject == exp["subject"]
    assert exp["body_contains"] in got.body_text
    assert got.lead_allowed is exp["lead"], got.reasons
    assert len(got.attachments) == len(exp["attachments"])
    for att, want in zip(got.attachments, exp["attachments"], strict=True):
        assert att.filename == want["filename"]
        assert att.content_type == want["content_type"]
        assert att.size == want["size"] == len(att.data)
        assert att.inline is want["inline"]
        assert att.content_id == want.get("content_id", att.content_id)
        if "sha256" in want:
            assert att.sha256() == want["sha256"]
    if "in_reply_to" in exp:
        assert got.in_reply_to == exp["in_reply_to"]
        assert thread_ids(got)[0] == exp["in_reply_to"]
    if "new_text_ends_before" in exp:
        assert exp["new_text_ends_before"] not in got.new_text
        assert exp["new_text_ends_before"] in got.body_text
    # every fixture but 13 parses cleanly; 13 says what it had to do
    if exp.get("broken_charset"):
        assert got.defects
    else:
        assert got.defects == ()
    assert got.date is not None and got.date.tzinfo is not None
    assert got.message_id and got.message_id.startswith("<") and got.message_id.endswith(">")
    assert got.new_text
    assert got.new_text in got.body_text or got.new_text == got.body_text.strip()


def test_every_fixture_is_in_the_answer_key() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.eml")) == sorted(EXPECTED)


# --------------------------------------------------------------------------- charsets


@pytest.mark.parametrize(
    ("name", "charset"),
    [("01_plain_windows1251.eml", "windows-1251"), ("02_plain_koi8r.eml", "koi8-r"),
     ("03_utf8_quoted_printable.eml", "utf-8"), ("04_utf8_base64.eml", "utf-8")],
)  # fmt: skip
def test_charsets_and_transfer_encodings(name: str, charset: str) -> None:
    got = letter(name)
    assert got.body_charset == charset
    assert "\ufffd" not in got.body_text
    assert "\r" not in got.body_text


def test_broken_charset_falls_back_to_windows_1251() -> None:
    got = letter("13_broken_charset.eml")
    assert got.body_charset == "windows-1251"
    assert "Меня зовут Сергей Кузнецов, я председатель ТСЖ" in got.body_text
    assert "\ufffd" not in got.body_text
    assert any("not valid utf-8" in d and "windows-1251" in d for d in got.defects)


def test_koi8r_bytes_declared_utf8_fall_back_to_koi8r() -> None:
    text = "Здравствуйте! Прошу перезвонить по поводу замены окон в квартире."
    raw = (
        b"From: a@example.ru\r\nSubject: x\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + text.encode("koi8-r") + b"\r\n"
    )
    got = parse(raw)
    assert got.body_text == text
    assert got.body_charset == "koi8-r"


def test_no_charset_and_unknown_charset() -> None:
    text = "Добрый день, нужен замер"
    plain = b"From: a@example.ru\r\nSubject: x\r\n\r\n" + text.encode("cp1251")
    assert parse(plain).body_text == text
    odd = (
        b"From: a@example.ru\r\nSubject: x\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n\r\n"
        + text.encode("utf-8")
    )
    got = parse(odd)
    assert got.body_text == text
    assert any("x-no-such-charset" in d for d in got.defects)


def test_raw_8bit_headers_are_decoded() -> None:
    raw = (
        "From: Иван Петров <Ivan@Example.RU>\r\nSubject: Заявка на окна\r\n\r\nтело".encode("cp1251")
    )
    got = parse(raw)
    assert got.subject == "Заявка на окна"
    assert (got.from_addr, got.from_name) == ("ivan@example.ru", "Иван Петров")
    assert got.body_text == "тело"


# --------------------------------------------------------------------------- subjects, addresses, threading


def test_folded_long_subject_is_joined_without_spaces() -> None:
    got = letter("14_long_subject_folded.eml")
    assert len(got.subject) == 246
    assert "  " not in got.subject


def test_reply_threading_and_new_text() -> None:
    got = letter("09_reply_in_reply_to.eml")
    assert got.in_reply_to == "<out-42@crm.example.ru>"
    assert got.references == ("<1795417331.512344690@f712.i.mail.ru>", "<out-42@crm.example.ru>")
    assert thread_ids(got) == ["<out-42@crm.example.ru>", "<1795417331.512344690@f712.i.mail.ru>"]
    assert got.is_reply and not got.is_automated and not got.lead_allowed
    assert got.new_text == (
        "Да, суббота подходит. Подъезд со двора, домофон 45, третий этаж. "
        "Позвоните, пожалуйста, за полчаса до приезда.\n\nАнна"
    )
    for history in ("Исходное сообщение", "Готовы приехать на замер", "Хочу заказать замер", "> "):
        assert history not in got.new_text
        assert history in got.body_text  # body_text stays complete


def test_recipients_and_reply_to() -> None:
    got = letter("09_reply_in_reply_to.eml")
    assert [(a.addr, a.name) for a in got.to] == [("zayavki@crm.example.ru", "Комфорт Дом — заявки")]
    first = letter("01_plain_windows1251.eml")
    assert [(a.addr, a.name) for a in first.reply_to] == [("ivan.petrov.1978@mail.ru", "Иван Петров")]
    assert first.return_path == "ivan.petrov.1978@mail.ru"
    assert letter("10_auto_reply.eml").return_path == ""


@pytest.mark.parametrize(
    ("text", "new"),
    [
        # Gmail (Russian): the attribution line has no "пишет", only a date and an address
        ("Спасибо, жду.\n\nпн, 23 нояб. 2026 г. в 12:30, Комфорт Дом <zayavki@crm.example.ru>:\n\n"
         "> Готовы приехать на замер\n> в субботу", "Спасибо, жду."),
        # Mail.ru / Yandex "пишет:"
        ("Да.\n\nПонедельник, 23 ноября 2026, 12:30 +03:00 от Комфорт Дом пишет:\n> Удобно в субботу?",
         "Да."),
        # English, attribution wrapped onto two lines
        ("Fine by me.\n\nOn Mon, 23 Nov 2026 at 12:30, Komfort Dom <\nzayavki@crm.example.ru> wrote:\n"
         "> Saturday?", "Fine by me."),
        # bottom-posting and inline answers survive
        ("Иван пишет:\n> Когда замер?\nВ субботу.\n> А цена?\nПосле замера.", "В субботу.\nПосле замера."),
        # Outlook English separator, and Outlook's header block without a separator
        ("Ok\n-----Original Message-----\nFrom: x\nSent: y\n\nold", "Ok"),
        ("Ок\n\n________________________________\nОт: Комфорт Дом\nОтправлено: 23 ноября\nКому: a@b\n\nold",
         "Ок"),
        # nothing but a quote: the whole text stays
        ("> только цитата", "> только цитата"),
    ],
)  # fmt: skip
def test_quote_folding(text: str, new: str) -> None:
    assert fold_quotes(text) == new


# --------------------------------------------------------------------------- HTML and attachments


def test_html_only_letter_is_sanitised_and_keeps_cid() -> None:
    got = letter("06_html_only_inline_image.eml")
    html = got.body_html
    assert html is not None
    low = html.lower()
    for bad in ("<script", "document.cookie", "evil.example.com", "onclick", "alert(", "<style", "<title",
                "track.mailtrack.example.com", "pixel.gif", "http://", "https://"):  # fmt: skip
        assert bad not in low, bad
    assert 'src="cid:logo-sevdom@sevdom.example.ru"' in html
    assert got.has_remote_images is False  # the only remote image was a 1×1 tracking pixel
    (logo,) = got.attachments
    assert f"cid:{logo.content_id.strip('<>')}" in html  # the web layer maps cid: to the stored file
    assert logo.inline and logo.shown_in_body  # the UI does not list it as a separate file
    assert logo.data.startswith(b"\x89PNG")
    # the text is derived from the sanitised HTML: no script text, no title
    assert "document" not in got.body_text and "Запрос\n" not in got.body_text
    assert got.body_text.startswith("Здравствуйте!")


def test_plain_is_preferred_and_html_kept_sanitised() -> None:
    got = letter("05_outlook_alternative.eml")
    assert got.body_text.startswith("Добрый день!")
    assert got.body_html and "14 окон ПВХ" in got.body_html
    assert "<o:p>" not in got.body_html and "mso-" not in got.body_html and "@font-face" not in got.body_html
    bulk = letter("12_bulk_newsletter.eml")
    assert bulk.body_html and "stroymarket.example.ru/o/" not in bulk.body_html  # its open pixel is gone
    assert 'rel="noopener noreferrer nofollow"' in bulk.body_html


def test_remote_images_become_click_to_load() -> None:
    html, remote = sanitize_html(
        '<p style="color:red;position:fixed;background:url(https://x.example/bg.png)">Hi</p>'
        '<img src="https://cdn.example.com/photo.jpg" alt="photo" width="300" onerror="alert(1)">'
        '<img src="data:image/png;base64,AAAA"><img src=\'http://t.example/p.gif\' width="1" height="1">'
        '<a href="/logout">x</a><a href="javascript:alert(1)">y</a><iframe src="https://x"></iframe>'
        '<form action="https://x"><input name="p"></form>'
    )
    assert remote is True
    assert '<img data-remote-src="https://cdn.example.com/photo.jpg" alt="photo" width="300">' in html
    assert "src=" not in html.replace("data-remote-src=", "")
    for bad in ("onerror", "position", "url(", "t.example", "/logout", "javascript", "iframe", "<form",
                "<input"):  # fmt: skip
        assert bad not in html, bad
    assert '<p style="color:red">' in html


def test_rfc2231_and_rfc2047_file_names() -> None:
    (pdf,) = letter("07_mixed_pdf_rfc2231.eml").attachments
    assert pdf.filename == "Смета №1042 на остекление балкона и замену окон (Лесной пр., 12).pdf"
    assert pdf.data.startswith(b"%PDF-")
    assert not pdf.inline and pdf.content_id is None


def test_the_2mb_attachment_parses() -> None:
    # Its speed (≈0.07 s on a quiet 2-core box) is a figure, not a function: no wall-clock limit here.
    # No bench times this letter alone; bench/mail_ingest.py carries it once in 500 letters.
    got = parse((FIXTURES / "08_attachment_2mb.eml").read_bytes())
    (dwg,) = got.attachments
    assert dwg.size == 2 * 1024 * 1024
    assert dwg.content_id == "<f_mb3x9q1k0>" and not dwg.inline and not dwg.shown_in_body


# --------------------------------------------------------------------------- classification


def test_auto_reply() -> None:
    got = letter("10_auto_reply.eml")
    assert got.is_auto_reply and not got.is_bounce and not got.is_bulk and not got.is_noreply
    assert got.in_reply_to == "<out-43@crm.example.ru>"
    assert any("Auto-Submitted" in r for r in got.reasons)


def test_auto_reply_subject_alone_is_not_enough() -> None:
    raw = "From: a@example.ru\r\nSubject: Автоответ: я в отпуске?\r\n\r\nЭто не автоответ, а вопрос".encode()
    got = parse(raw)
    assert not got.is_auto_reply and got.lead_allowed
    with_header = b"X-Auto-Response-Suppress: All\r\n" + raw
    assert parse(with_header).is_auto_reply
    assert parse(b"X-Autoreply: yes\r\n" + raw).is_auto_reply
    assert not parse(b"Auto-Submitted: no\r\n" + raw).is_auto_reply


def test_dsn_bounce_details() -> None:
    got = letter("11_dsn_bounce.eml")
    want = EXPECTED["11_dsn_bounce.eml"]["dsn"]
    assert got.is_bounce and not got.lead_allowed
    assert got.from_name == ""
    assert got.bounce is not None
    assert got.bounce.final_recipient == want["final_recipient"]
    assert got.bounce.action == want["action"]
    assert got.bounce.status == want["status"]
    assert got.bounce.original_message_id == want["original_message_id"] == "<out-44@crm.example.ru>"
    assert got.bounce.original_subject == "Ваша заявка №1044 — замер окон"
    assert "user not found" in got.bounce.diagnostic and "\n" not in got.bounce.diagnostic
    assert got.attachments == ()  # the report parts are not user files


def test_plain_text_bounce_without_a_report() -> None:
    raw = (
        b"Return-Path: <>\r\nFrom: Mail Delivery Subsystem <mailer-daemon@mx.example.ru>\r\n"
        b"Subject: Mail delivery failed: returning message to sender\r\n\r\n"
        b"This message was created automatically by mail delivery software.\r\n\r\n"
        b"A message that you sent could not be delivered to one or more of its recipients:\r\n\r\n"
        b"  nobody@example.ru\r\n    550 5.1.1 User unknown\r\n\r\n"
        b"------ This is a copy of the message's headers. ------\r\n\r\n"
        b"Message-ID: <out-77@crm.example.ru>\r\n"
    )
    got = parse(raw)
    assert got.is_bounce and got.bounce is not None
    assert got.bounce.original_message_id == "<out-77@crm.example.ru>"
    assert got.bounce.final_recipient == "nobody@example.ru"
    assert got.bounce.status == "5.1.1"


def test_bulk_and_noreply() -> None:
    bulk = letter("12_bulk_newsletter.eml")
    assert bulk.is_bulk and not bulk.is_auto_reply and not bulk.is_bounce
    noreply = letter("15_noreply.eml")
    assert noreply.is_noreply and not noreply.is_bulk and not noreply.is_auto_reply
    locals_ = ("no-reply", "do-not-reply", "donotreply", "no_reply", "NoReply+42", "notifications-noreply")
    for local in locals_:
        raw = f"From: Service <{local}@example.ru>\r\nSubject: x\r\n\r\nhi".encode()
        assert parse(raw).is_noreply, local
    assert not parse(b"From: norep@example.ru\r\nSubject: x\r\n\r\nhi").is_noreply


# --------------------------------------------------------------------------- hostile input


def test_no_from() -> None:
    got = parse(b"Subject: hello\r\nContent-Type: text/plain\r\n\r\nbody text")
    assert got.from_addr == "" and got.from_name == ""
    assert got.subject == "hello" and got.body_text == "body text"
    assert any("no sender" in d for d in got.defects)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe" * 1000,
        os.urandom(50_000),
        b"From: <<<@@@>>>\r\nDate: yesterday-ish\r\nMessage-ID: \r\nContent-Type: multipart/mixed\r\n\r\n--",
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=zlib\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n--b\r\nContent-Type: image/png\r\n"
        b"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename*=bad''%ZZ\r\n\r\n"
        b"iVBORw0KGgo=\r\n",
        b"Subject: =?utf-8?B?broken?= =?nonsense?Q?x?=\r\nFrom: =?koi8-r?B?????=\r\n\r\n",
        b"Subject: ok\r\n\r\n" + b"\xff" * 10,
    ],
    ids=["empty", "binary", "random", "broken-headers", "broken-parts", "broken-encoded-words", "8bit-noise"],
)
def test_garbage_never_raises(raw: bytes) -> None:
    got = parse(raw)
    assert isinstance(got, ParsedLetter)
    assert isinstance(got.subject, str) and isinstance(got.body_text, str)
    assert got.defects


def test_date_without_zone_and_broken_date() -> None:
    got = parse(b"From: a@b.ru\r\nDate: Mon, 23 Nov 2026 09:12:31 -0000\r\n\r\nx")
    assert got.date == datetime.fromisoformat("2026-11-23T09:12:31+00:00")
    bad = parse(b"From: a@b.ru\r\nDate: the day before Christmas\r\n\r\nx")
    assert bad.date is None and any("Date" in d for d in bad.defects)


def _mail_with_attachment(size: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Клиент <client@example.ru>"
    msg["To"] = "zayavki@crm.example.ru"
    msg["Subject"] = "Большой файл"
    msg.set_content("Смотрите вложение.")
    block = hashlib.sha256(b"x").digest() * 2048  # 64 KiB of non-repeating-looking bytes
    data = (block * (size // len(block) + 1))[:size]
    msg.add_attachment(data, maintype="application", subtype="octet-stream", filename="проект.zip")
    return msg.as_bytes(policy=SMTP)


def test_20mb_attachment_parses_in_reasonable_time() -> None:
    size = 20 * 1024 * 1024
    raw = _mail_with_attachment(size)
    started = time.perf_counter()
    got = parse(raw)
    elapsed = time.perf_counter() - started
    # ≈1 s on a quiet 2-core box, so ≈10 s on a box ten times slower; a quadratic copy of 20 MB (line by
    # line: terabytes of memcpy) does not finish in minutes. The limit only tells those two apart.
    assert elapsed < 60, elapsed
    (att,) = got.attachments
    assert att.size == size and att.filename == "проект.zip"
    assert got.body_text.strip() == "Смотрите вложение."
    assert got.defects == ()


def test_nested_message_rfc822_is_one_attachment() -> None:
    inner = EmailMessage()
    inner["From"] = "Анна <anna@example.ru>"
    inner["Subject"] = "Исходная заявка"
    inner.set_content("Внутреннее письмо")
    inner.add_attachment(b"%PDF-1.4 inner", maintype="application", subtype="pdf", filename="inner.pdf")
    outer = EmailMessage()
    outer["From"] = "Менеджер <manager@example.ru>"
    outer["Subject"] = "Fwd: Исходная заявка"
    outer.set_content("Пересылаю письмо клиента.")
    outer.add_attachment(inner)
    # and a letter nested in a letter nested in a letter
    deeper = EmailMessage()
    deeper["From"] = "x@example.ru"
    deeper["Subject"] = "deeper"
    deeper.set_content("top")
    deeper.add_attachment(outer)
    for raw, text in ((outer.as_bytes(policy=SMTP), "Пересылаю письмо клиента."),
                      (deeper.as_bytes(policy=SMTP), "top")):  # fmt: skip
        got = parse(raw)
        assert got.body_text.strip() == text
        (att,) = got.attachments
        assert att.content_type == "message/rfc822"
        assert att.filename.endswith(".eml")
        assert att.size == len(att.data) > 0
        assert parse(att.data).from_addr in ("anna@example.ru", "manager@example.ru")


def test_deeply_nested_multiparts_do_not_blow_up() -> None:
    depth = 200
    head = "".join(
        f"--b{i}\r\nContent-Type: multipart/mixed; boundary=b{i + 1}\r\n\r\n" for i in range(depth)
    )
    tail = "".join(f"--b{i}--\r\n" for i in reversed(range(depth)))
    raw = (
        f"From: a@b.ru\r\nSubject: deep\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n{head}"
        f"--b{depth}\r\nContent-Type: text/plain\r\n\r\ndeep text\r\n--b{depth}--\r\n{tail}"
    ).encode()
    got = parse(raw)
    assert got.subject == "deep"


def test_attachment_names_cannot_escape_a_folder() -> None:
    msg = EmailMessage()
    msg["From"] = "a@b.ru"
    msg.set_content("x")
    msg.add_attachment(b"1", maintype="application", subtype="octet-stream", filename="../../etc/passwd")
    msg.add_attachment(b"2", maintype="application", subtype="octet-stream", filename="C:\\Windows\\evil.exe")
    msg.add_attachment(b"3", maintype="application", subtype="octet-stream")
    names = [a.filename for a in parse(msg.as_bytes()).attachments]
    assert names == ["passwd", "evil.exe", "attachment-3.bin"]


def test_base64_decoding_of_a_text_part_is_not_a_copy_chain() -> None:
    body = ("строка текста " * 8 + "\n") * 80000  # ≈17 MB of UTF-8 text
    raw = (
        b"From: a@b.ru\r\nSubject: long\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(body.encode())
    )
    started = time.perf_counter()
    got = parse(raw)
    # A quadratic guard: ≈0.55 s on a quiet 2-core box (so ≈6 s on one ten times slower), while a copy
    # chain (simulated: the decoded bytes grown line by line) took 180 s on that box at this size (4.7 s
    # at a quarter of it: too close to a slow box's linear time to tell the two apart).
    assert time.perf_counter() - started < 20
    assert got.body_text == body.rstrip()


def test_apple_mail_split_body_keeps_all_its_text() -> None:
    msg = EmailMessage()
    msg["From"] = "a@b.ru"
    msg.set_content("Вот фото окна:")
    msg.add_attachment(b"\xff\xd8jpeg", maintype="image", subtype="jpeg", filename="IMG_0001.jpg",
                       disposition="inline")  # fmt: skip
    tail = EmailMessage()
    tail.set_content("А это после фото.")
    tail.replace_header("Content-Type", 'text/plain; charset="utf-8"')
    msg.attach(tail)
    got = parse(msg.as_bytes(policy=SMTP))
    assert got.body_text == "Вот фото окна:\n\nА это после фото."
    (photo,) = got.attachments
    assert photo.inline and not photo.shown_in_body  # inline by its header, yet nowhere in the body: list it


def test_empty_plain_part_falls_back_to_the_html() -> None:
    msg = EmailMessage()
    msg["From"] = "a@b.ru"
    msg.set_content("\n")
    msg.add_alternative("<p>Текст только в HTML</p><blockquote><p>старое</p></blockquote>", subtype="html")
    got = parse(msg.as_bytes(policy=SMTP))
    assert got.body_text == "Текст только в HTML\n\n> старое"
    assert got.new_text == "Текст только в HTML"


def test_broken_encoded_words_and_bad_base64_are_read_as_far_as_possible() -> None:
    got = parse(b"From: =?utf-8?B?0J/Qsx?= <Anna@Example.ru>\r\nSubject: x\r\n\r\nbody")
    assert got.from_addr == "anna@example.ru"
    bad_body = parse(
        b"From: a@b.ru\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.b64encode("Привет".encode())[:-1]
    )
    assert bad_body.body_text.startswith("Прив")
    assert any("base64" in d.lower() for d in bad_body.defects)
