"""Property-based fuzz of what reads outside input (issue 13): the AMI wire parser and the call
tracker, the MIME parser, the Twilio form and the Telegram update.

Each property is the parser's documented promise:

* ``AmiParser.feed`` never raises; a stream cut into any chunks gives the messages of the whole
  (bad frames are counted, not raised); a well-formed message survives the round trip.
* ``Tracker.feed`` never raises: a message it cannot use is logged and counted in ``skipped``.
* ``hub.mail.parse.parse`` never raises, on any bytes or on a real letter (tests/fixtures/mail)
  mutated; and its last-resort catch-all ("the letter could not be parsed") never fires: whatever
  cannot be read is a defect of that part, not of the whole letter.
* ``TwilioChannel.process`` takes in any journaled form the webhook would have accepted (MessageSid
  and From; a status callback with a known status) without raising.
* ``TelegramChannel``: any update python-telegram-bot can read is taken in without raising (an
  update the library refuses raises in ``process``: the journal retries it and gives up, documented).

Budget: a few dozen examples each, ``derandomize=True`` (the same examples every run) and
``database=None``; the whole file takes a few seconds.
"""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hub.config import TelegramConfig, TwilioConfig
from hub.crm.ports import DeliveryStatus, InboundMessage
from hub.mail.parse import ParsedLetter, parse
from hub.messengers.telegram import TelegramChannel
from hub.messengers.twilio_sms import STATUS_KEY, STATUSES, TwilioChannel
from hub.telephony.ami_parse import AmiParser, iter_jsonl, parse_bytes
from hub.telephony.tracker import Tracker
from tests.paths import AMI_FIXTURES, MAIL_FIXTURES, TELEGRAM_FIXTURES

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])
HOSTILE = ("", " ", "\x00", "\r", "\n", "\r\n", ":", ": ", "²", "١٢", "-1", "9" * 30, "NaN", "1e999",
           "<unknown>", "s@1:2", "PJSIP/101-00000001", "Local/101@from-internal-0001;1", "😀", "x" * 3000)
text = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=20))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# --- AMI ------------------------------------------------------------------------------------------------

AMI_MESSAGES = [m for path in sorted(AMI_FIXTURES.glob("*.jsonl")) for m in iter_jsonl(path)]
AMI_KEYS = sorted({key for m in AMI_MESSAGES for key in m})
AMI_EVENTS = sorted({str(m["Event"]) for m in AMI_MESSAGES if "Event" in m})
AMI_CAPTURES = [p.read_bytes()[:4000] for p in sorted(AMI_FIXTURES.glob("*.ami"))]


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


ami_bytes = st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from([b"Asterisk Call Manager/5.0.1\r\n", b"Event: Newchannel\r\n",
                              b"Uniqueid: 1.1\r\n", b"\r\n", b"\r\n\r\n", b"no header here\r\n",
                              b" Key: v\r\n", b"Key:v\r\n",
                              b": v\r\n", b"\xff\xfe\r\n", b"Key: \xd0\r\n", b"\r", b"\n"]),
             max_size=30).map(b"".join),
    st.builds(lambda capture, at, junk: capture[:at] + junk + capture[at:],
              st.sampled_from(AMI_CAPTURES), st.integers(0, 4000), st.binary(max_size=20)),
)


@FUZZ
@given(data=ami_bytes, cuts=st.lists(st.integers(0, 5000), max_size=8))
def test_ami_parser_never_raises_and_chunks_do_not_matter(data: bytes, cuts: list[int]) -> None:
    banner, whole = parse_bytes(data)
    parser = AmiParser()
    pieces = [m for piece in chunks(data, cuts) for m in parser.feed(piece)]
    assert pieces == whole
    assert parser.banner == banner
    assert all(isinstance(m, dict) for m in whole)


ami_key = st.text(st.characters(blacklist_characters="\r\n:", blacklist_categories=("Cs",)), min_size=1,
                  max_size=12).filter(lambda k: k[0] != " " and k[-1] != " ")
ami_value = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=20)


@FUZZ
@given(messages=st.lists(st.dictionaries(ami_key, ami_value, min_size=1, max_size=6), max_size=5))
def test_ami_messages_survive_the_wire(messages: list[dict[str, str]]) -> None:
    wire = "Asterisk Call Manager/5.0.1\r\n" + "".join(
        "".join(f"{k}: {v}\r\n" for k, v in m.items()) + "\r\n" for m in messages)
    banner, parsed = parse_bytes(wire.encode("utf-8"))
    assert banner == "Asterisk Call Manager/5.0.1"
    assert parsed == messages


ami_field = st.one_of(text, st.lists(text, min_size=2, max_size=3))
ami_message = st.builds(
    lambda event, fields: {"Event": event, **fields},
    st.one_of(st.sampled_from(AMI_EVENTS), text),
    st.dictionaries(st.one_of(st.sampled_from(AMI_KEYS), text), ami_field, max_size=12))
# a real call's messages with some fields replaced: reaches deep into the handlers
mutated_call = st.builds(
    lambda start, n, changes: [
        {**m, **(changes if i % 3 == 0 else {})} for i, m in enumerate(AMI_MESSAGES[start:start + n])],
    st.integers(0, max(0, len(AMI_MESSAGES) - 1)), st.integers(1, 40),
    st.dictionaries(st.sampled_from(AMI_KEYS), ami_field, max_size=3))


@FUZZ
@given(messages=st.one_of(st.lists(ami_message, max_size=15), mutated_call),
       extensions=st.sampled_from([(), ("101", "102"), None]))
def test_tracker_never_raises(messages: list[dict[str, Any]], extensions: tuple[str, ...] | None) -> None:
    tracker = Tracker(trunks=("trunk",), extensions=extensions)
    facts = [fact for m in messages for fact in tracker.feed(m)]  # type: ignore[arg-type]
    assert 0 <= tracker.skipped <= len(messages)
    assert isinstance(facts, list)
    assert tracker.active_calls >= 0


# --- MIME -----------------------------------------------------------------------------------------------

LETTERS = [p.read_bytes() for p in sorted(MAIL_FIXTURES.glob("*.eml"))]
SMALL_LETTERS = [raw for raw in LETTERS if len(raw) < 200_000]
HEADER_JUNK = (b"Content-Type: multipart/mixed; boundary=\r\n",
               b"Content-Type: text/plain; charset=\"x-\xff\"\r\n",
               b"Content-Transfer-Encoding: base64\r\n", b"Content-Transfer-Encoding: quoted-printable\r\n",
               b"Subject: =?utf-8?B?0J/=?= =?koi8-r?Q?=FF=?=\r\n", b"From: <<@>>\r\n",
               b"Date: 31 Feb 99999\r\n",
               b"Content-Disposition: attachment; filename*=utf-8''%FF%FE\r\n", b"\r\n--\r\n",
               b"Content-Type: message/rfc822\r\n", b"Content-Type: text/html\r\n\r\n<img src=//x width=1>",
               b"References: " + b"<a@b> " * 200 + b"\r\n", b"\x00", b"=\r\n", b"Message-ID: \r\n")


def mutate(raw: bytes, at: int, action: int, junk: bytes) -> bytes:
    at %= len(raw) + 1
    if action == 0:
        return raw[:at]  # cut off
    if action == 1:
        return raw[:at] + junk + raw[at:]  # inserted
    if action == 2:
        return raw[:at] + junk + raw[at + len(junk):]  # overwritten
    return junk + raw  # a header line in front


letters = st.one_of(
    st.binary(max_size=400),
    st.builds(mutate, st.sampled_from(SMALL_LETTERS), st.integers(0, 200_000), st.integers(0, 3),
              st.one_of(st.sampled_from(HEADER_JUNK), st.binary(max_size=30))),
)


@FUZZ
@given(raw=letters)
@example(raw=b"")
@example(raw=b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n--x--")
def test_mail_parse_never_raises_nor_gives_up(raw: bytes) -> None:
    letter = parse(raw)
    assert isinstance(letter, ParsedLetter)
    assert not [d for d in letter.defects if d.startswith("the letter could not be parsed")], letter.defects


# --- Twilio ---------------------------------------------------------------------------------------------

class FakeIntake:
    """Records what a channel hands the core; never fails."""

    def __init__(self) -> None:
        self.inbound: list[InboundMessage] = []
        self.statuses: list[DeliveryStatus] = []
        self.finished: list[int] = []

    async def received(self, message: InboundMessage, delivery_key: str | None = None,
                        journal_id: int | None = None) -> dict[str, Any]:
        assert isinstance(message, InboundMessage)
        self.inbound.append(message)
        return {}

    async def status(self, update: DeliveryStatus) -> None:
        self.statuses.append(update)

    async def finish(self, journal_id: int) -> bool:
        self.finished.append(journal_id)
        return True

    async def delivery_seen(self, channel: str, delivery_key: str) -> bool:
        return True

    async def blocked(self, channel: str, address: str, blocked: bool) -> None:
        return None

    async def journal(self, channel: str, key: str, body: bytes) -> bool:
        return True

    async def cursor(self, name: str) -> str | None:
        return None

    async def set_cursor(self, name: str, value: str) -> None:
        return None


TWILIO_FIELDS = ("Body", "To", "NumMedia", "MediaUrl0", "MediaContentType0", "MediaUrl1", "ProfileName",
                 "SmsStatus", "ErrorCode", "AccountSid", "NumSegments", "WaId", "ApiVersion")
form_value = st.one_of(text, st.sampled_from(["whatsapp:+79161234567", "+79161234567", "ftp://x/y",
                                              "http://127.0.0.1:9/m", "10", "-5", "2", "image/jpeg"]))


def twilio_channel(intake: FakeIntake) -> TwilioChannel:
    config = TwilioConfig(account_sid="AC" + "0" * 32, auth_token="secret", from_number="+15005550006")
    channel = TwilioChannel(config, public_url="http://127.0.0.1", intake=intake)  # type: ignore[arg-type]
    channel.media_timeout = channel.connect_timeout = 0.5
    return channel


@FUZZ
@given(sid=text.filter(bool), sender=form_value.filter(bool),
       extra=st.dictionaries(st.one_of(st.sampled_from(TWILIO_FIELDS), text), form_value, max_size=6))
def test_twilio_inbound_form_is_taken_in(sid: str, sender: str, extra: dict[str, str]) -> None:
    intake = FakeIntake()
    body = urlencode({**extra, "MessageSid": sid, "From": sender}).encode()
    run(twilio_channel(intake).process(sid, body, 7))
    assert [m.provider_id for m in intake.inbound] == [sid]


@FUZZ
@given(sid=text.filter(bool), status=st.sampled_from(STATUSES),
       extra=st.dictionaries(st.one_of(st.sampled_from(TWILIO_FIELDS), text), form_value, max_size=4))
def test_twilio_status_form_is_taken_in(sid: str, status: str, extra: dict[str, str]) -> None:
    intake = FakeIntake()
    body = urlencode({**extra, "MessageSid": sid, "MessageStatus": status}).encode()
    run(twilio_channel(intake).process(f"{sid}{STATUS_KEY}{status}", body, 7))
    assert [s.status for s in intake.statuses] == [status] and intake.finished == [7]


# --- Telegram -------------------------------------------------------------------------------------------

def _updates() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in sorted(Path(TELEGRAM_FIXTURES).glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        items = data.get("result") if isinstance(data.get("result"), list) else [data]
        found += [item for item in items if isinstance(item, dict) and "update_id" in item]
    return found


UPDATES = _updates()


# what the Bot API always sends (the library reads an update without them, so the fuzz keeps them)
REQUIRED = {"update_id", "message_id", "date", "chat", "id", "type", "first_name", "is_bot", "from",
            "chat_instance", "file_id", "file_unique_id", "width", "height", "duration", "phone_number",
            "latitude", "longitude", "new_chat_member", "old_chat_member", "status", "user", "title",
            "address", "callback_data", "inline_keyboard", "is_animated", "is_video", "length", "url",
            "offset"}


def mutated(value: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """``value`` with any of its optional parts kept or dropped, and any part replaced by another value
    of its JSON type (the library reads what it is given without checking types or required fields:
    a wrong type or a missing ``chat`` is no update Telegram sends)."""
    if isinstance(value, dict) and depth < 6:
        return st.fixed_dictionaries({k: mutated(v, depth + 1) for k, v in value.items() if k in REQUIRED},
                                     optional={k: mutated(v, depth + 1) for k, v in value.items()
                                               if k not in REQUIRED})
    if isinstance(value, list) and depth < 6:
        return st.tuples(*(mutated(v, depth + 1) for v in value)).map(list) if value else st.just([])
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.just(value) | st.integers() | st.sampled_from([0, -1, 2**31, 2**53, -(2**53)])
    if isinstance(value, float):
        return st.just(value) | st.floats(allow_nan=False, allow_infinity=False)
    if isinstance(value, str):
        return st.just(value) | text
    return st.just(value)


class FakeBot:
    """Answers getFile with an error: the message is kept with a note instead of the file."""

    async def get_file(self, file_id: str) -> Any:
        from telegram.error import BadRequest

        raise BadRequest("Wrong file_id")

    async def answer_callback_query(self, query_id: str) -> bool:
        return True


@FUZZ
@given(update=st.sampled_from(UPDATES).flatmap(mutated))
def test_telegram_update_the_library_reads_is_taken_in(update: dict[str, Any]) -> None:
    from telegram import Update

    intake = FakeIntake()
    channel = TelegramChannel(TelegramConfig(token="1:x"), public_url="http://127.0.0.1",
                              intake=intake)  # type: ignore[arg-type]
    channel.bot = FakeBot()  # type: ignore[assignment]
    if not isinstance(update.get("update_id"), int):  # the webhook refuses it before the journal
        update = {**update, "update_id": 1}
    try:
        parsed = Update.de_json(copy.deepcopy(update), None)  # type: ignore[arg-type]
    except Exception:  # the library refuses it: process raises, the journal retries and gives up
        return
    run(channel._take(parsed, journal_id=3))
    assert len(intake.inbound) + len(intake.finished) == 1


def test_the_fixtures_feed_the_fuzz() -> None:
    assert AMI_KEYS and AMI_EVENTS and AMI_CAPTURES and SMALL_LETTERS and UPDATES
