"""One RFC 5322 letter in, one `ParsedLetter` out: a pure function, no I/O, no database.

`parse(raw)` never raises. Whatever cannot be read is left empty ("" / None / ()) and said in
`ParsedLetter.defects` as plain sentences, so the intake can store the letter anyway and show why
it looks odd.

Decisions (see the report of the e-mail parsing work and docs/decisions.md when the lead adds it):

- Addresses are lower-cased (`MAILER-DAEMON@…` becomes `mailer-daemon@…`): they are lookup keys.
- Body text: `text/plain` is preferred; a letter with HTML only gets its text derived from the
  *sanitised* HTML (block elements become lines, `<blockquote>` becomes `> ` lines so that quote
  folding works on it too).
- Charsets: the declared charset is tried strictly; on failure (fixture 13: declared utf-8, bytes
  windows-1251) or an unknown charset, utf-8 is tried, then windows-1251 and koi8-r, whichever of the
  two the bytes look like first (Russian text is mostly lower-case letters: 0xE0–0xFF in
  windows-1251, 0xC0–0xDF in koi8-r). utf-8 with a little damage (a cut-off last letter) stays
  utf-8 with U+FFFD for the broken bytes. Each fallback is recorded in `defects`.
- HTML is sanitised with nh3: no script/style/title content, no event handlers, no forms or frames,
  `style` attributes reduced to harmless properties (no `url()`-bearing ones), relative URLs dropped,
  links get `rel="noopener noreferrer nofollow" target="_blank"`.
- Remote images are never left loadable: an `<img src="http(s)://…">` becomes
  `<img data-remote-src="https://…">` (no `src`), which the UI may turn back into `src` when the user
  clicks "show images"; 0×0/1×1 images (tracking pixels) are dropped outright. `cid:` images keep
  `src="cid:<content-id without angle brackets>"`; the web layer maps that to the stored attachment
  whose `content_id` is `<content-id>`. `has_remote_images` tells the UI whether to offer the click.
  `Attachment.inline` is what the headers say; `Attachment.shown_in_body` says whether the sanitised
  HTML actually shows it (list as files those that are not).
- `new_text` folds quoted history away: everything from an Outlook separator ("-----Исходное
  сообщение-----", "-----Original Message-----") or an Outlook header block ("От:/Отправлено:",
  "From:/Sent:") onward is cut; "> " lines and the attribution line just before them ("… пишет:",
  "… wrote:", Gmail/Yandex/Mail.ru "дата, Имя <addr>:") are removed wherever they are (so inline and
  bottom-posted answers survive). Forwarded messages are *not* folded: a forward is content. If
  nothing is left, `new_text` is the whole body.
- Classification follows fixtures/mail/README.md. `lead_allowed` is false for auto-replies, bounces,
  bulk mail, noreply senders *and replies* (In-Reply-To/References present: thread them instead).
  `is_automated` (the first four only) tells the intake whether a reply whose thread it cannot find
  may still become a lead.
"""

from __future__ import annotations

import codecs
import email
import hashlib
import html
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy as _policy
from email.header import decode_header
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import collapse_rfc2231_value, getaddresses
from html.parser import HTMLParser
from typing import TypeVar, cast
from urllib.parse import unquote

import nh3

from hub.filenames import sanitize_filename

__all__ = [
    "Address",
    "Attachment",
    "Bounce",
    "BounceRecipient",
    "ParsedLetter",
    "parse",
    "thread_ids",
]

_POLICY = _policy.default
_T = TypeVar("_T")


# --------------------------------------------------------------------------- the result


@dataclass(frozen=True)
class Address:
    addr: str  # lower-cased addr-spec
    name: str = ""  # decoded display name, "" when none


@dataclass(frozen=True)
class Attachment:
    filename: str  # decoded (RFC 2231 / RFC 2047-in-quotes), path parts stripped; synthesised if absent
    content_type: str  # lower-case "type/subtype"
    size: int  # len(data)
    data: bytes = field(repr=False)
    inline: bool = False  # Content-Disposition inline (or a Content-ID part of multipart/related)
    content_id: str | None = None  # "<id>" as in the header
    shown_in_body: bool = False  # body_html shows it through src="cid:…": do not list it as a file

    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class BounceRecipient:
    address: str  # lower-cased
    action: str  # "failed", "delayed", … ("" when unknown)
    status: str  # "5.0.0" ("" when unknown)
    diagnostic: str  # "550 … user not found" (unfolded), "" when none


@dataclass(frozen=True)
class Bounce:
    recipients: tuple[BounceRecipient, ...]
    original_message_id: str | None  # "<id>" of our letter that bounced
    original_subject: str = ""
    reporting_mta: str = ""

    @property
    def _main(self) -> BounceRecipient | None:
        for r in self.recipients:
            if r.action.lower() == "failed":
                return r
        return self.recipients[0] if self.recipients else None

    @property
    def final_recipient(self) -> str:
        main = self._main
        return main.address if main else ""

    @property
    def action(self) -> str:
        main = self._main
        return main.action if main else ""

    @property
    def status(self) -> str:
        main = self._main
        return main.status if main else ""

    @property
    def diagnostic(self) -> str:
        main = self._main
        return main.diagnostic if main else ""


@dataclass(frozen=True)
class ParsedLetter:
    message_id: str | None = None  # "<id>"
    in_reply_to: str | None = None  # first "<id>" of In-Reply-To
    references: tuple[str, ...] = ()  # oldest first, as in the header
    date: datetime | None = None  # aware ("-0000" and zone-less dates are taken as UTC)
    subject: str = ""
    from_addr: str = ""  # lower-cased
    from_name: str = ""
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    reply_to: tuple[Address, ...] = ()
    return_path: str | None = None  # None: no header; "": the null sender <>
    body_text: str = ""  # complete preferred text, LF line ends
    new_text: str = ""  # body_text without the quoted history
    body_html: str | None = None  # sanitised
    body_charset: str | None = None  # charset the text was actually decoded with
    has_remote_images: bool = False  # body_html holds <img data-remote-src>
    attachments: tuple[Attachment, ...] = ()
    is_auto_reply: bool = False
    is_bounce: bool = False
    is_bulk: bool = False
    is_noreply: bool = False
    is_reply: bool = False
    bounce: Bounce | None = None
    reasons: tuple[str, ...] = ()  # why the flags above are set, e.g. "Auto-Submitted: auto-replied"
    defects: tuple[str, ...] = ()

    @property
    def is_automated(self) -> bool:
        """Sent by a machine: never create a lead from it and never answer it automatically."""
        return self.is_auto_reply or self.is_bounce or self.is_bulk or self.is_noreply

    @property
    def lead_allowed(self) -> bool:
        """May this letter create a new lead? (The "Lead?" column of fixtures/mail/README.md.)"""
        return not (self.is_automated or self.is_reply)


def thread_ids(letter: ParsedLetter) -> list[str]:
    """Message-IDs to look the thread up by: In-Reply-To, then References newest first; no repeats."""
    seen: set[str] = set()
    out: list[str] = []
    own = letter.message_id
    candidates = ([letter.in_reply_to] if letter.in_reply_to else []) + list(reversed(letter.references))
    for mid in candidates:
        if mid and mid not in seen and mid != own:
            seen.add(mid)
            out.append(mid)
    return out


# --------------------------------------------------------------------------- entry point


def parse(raw: bytes) -> ParsedLetter:
    """Parse one message as an IMAP server returns it for BODY[]. Never raises."""
    defects: list[str] = []
    try:
        return _parse(raw, defects)
    except Exception as exc:  # the last resort: a bug or a pathological input
        defects.append(f"the letter could not be parsed: {type(exc).__name__}: {exc}")
        return ParsedLetter(defects=tuple(defects))


def _guard(defects: list[str], what: str, fn: Callable[[], _T], default: _T) -> _T:
    try:
        return fn()
    except Exception as exc:
        defects.append(f"{what} could not be read: {type(exc).__name__}: {exc}")
        return default


def _parse(raw: bytes, defects: list[str]) -> ParsedLetter:
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    elif not isinstance(raw, bytes):
        raw = bytes(raw)
    if not raw.strip():
        defects.append("the letter is empty")
        return ParsedLetter(defects=tuple(defects))
    msg = email.message_from_bytes(raw, policy=_POLICY)
    g = lambda what, fn, default: _guard(defects, what, fn, default)  # noqa: E731

    for where, part in g("the MIME structure", lambda: list(_walk(msg)), []):
        for d in getattr(part, "defects", ()):
            defects.append(_defect_text(d, where))
    if not _raw_header(msg, "From") and not _raw_header(msg, "Subject") and not _raw_header(msg, "Date"):
        defects.append("no headers found (From, Subject, Date all missing): probably not an e-mail")

    message_id = g("Message-ID", lambda: _msgid(_raw_header(msg, "Message-ID")), None)
    irt_ids = g("In-Reply-To", lambda: _msgids(_raw_header(msg, "In-Reply-To")), [])
    references = g("References", lambda: tuple(_msgids(_raw_header(msg, "References"))), ())
    date = g("Date", lambda: _date(msg, defects), None)
    subject = g("Subject", lambda: _header_text(msg, "Subject", defects) or "", "")

    senders = g("From", lambda: _addresses(msg, "From", defects), ())
    if not senders:
        defects.append("no sender address (From is missing or unreadable)")
    elif len(senders) > 1:
        defects.append(f"From holds {len(senders)} addresses; the first one is taken as the sender")
    from_addr = senders[0].addr if senders else ""
    from_name = senders[0].name if senders else ""
    to = g("To", lambda: _addresses(msg, "To", defects), ())
    cc = g("Cc", lambda: _addresses(msg, "Cc", defects), ())
    reply_to = g("Reply-To", lambda: _addresses(msg, "Reply-To", defects), ())
    return_path = g("Return-Path", lambda: _return_path(msg), None)

    plain_part, html_part = g("the body", lambda: _body_parts(msg), (None, None))
    unsplit = msg.get_content_maintype() == "multipart" and not msg.is_multipart()
    if plain_part is None and html_part is None and unsplit:
        plain_part = msg  # a multipart without a usable boundary: its text is all there is
    body_text, charset = "", None
    if plain_part is not None:
        body_text, charset = g("the text body", lambda: _part_text(plain_part, defects), ("", None))
    body_html, has_remote = None, False
    if html_part is not None:
        html_src, html_charset = g("the HTML body", lambda: _part_text(html_part, defects), ("", None))
        body_html, has_remote = g("the HTML body", lambda: sanitize_html(html_src), (None, False))
        if body_html is not None and not body_text.strip():  # no text part, or an empty one
            body_text = g("the text of the HTML body", lambda: html_to_text(body_html), "")
            charset = html_charset

    acc = _Parts(
        body_ids={id(p) for p in (plain_part, html_part) if p is not None},
        shown_cids={html.unescape(c) for c in _SHOWN_CID.findall(body_html or "")},
        defects=defects,
    )
    g("the attachments", lambda: _collect(msg, "", acc), None)
    attachments = tuple(acc.files)
    if plain_part is not None and acc.text_fragments:
        more = [g("a text part", lambda p=p: _part_text(p, defects)[0], "") for p in acc.text_fragments]
        body_text = "\n\n".join(t for t in [body_text, *more] if t)

    flags = g("the classification", lambda: _classify(msg, from_addr, subject, return_path), None)
    flags = flags or _Flags()
    bounce = None
    if flags.is_bounce:
        bounce = g("the bounce report", lambda: _bounce_info(msg, body_text), None)

    new_text = g("the new text", lambda: fold_quotes(body_text), body_text)
    return ParsedLetter(
        message_id=message_id,
        in_reply_to=irt_ids[0] if irt_ids else None,
        references=references,
        date=date,
        subject=subject,
        from_addr=from_addr,
        from_name=from_name,
        to=to,
        cc=cc,
        reply_to=reply_to,
        return_path=return_path,
        body_text=body_text,
        new_text=new_text,
        body_html=body_html,
        body_charset=charset,
        has_remote_images=has_remote,
        attachments=attachments,
        is_auto_reply=flags.is_auto_reply,
        is_bounce=flags.is_bounce,
        is_bulk=flags.is_bulk,
        is_noreply=flags.is_noreply,
        is_reply=bool(irt_ids or references),
        bounce=bounce,
        reasons=tuple(flags.reasons),
        defects=tuple(dict.fromkeys(defects)),  # no repeats, order kept
    )


# --------------------------------------------------------------------------- MIME tree


_MAX_DEPTH = 40


def _walk(msg: Message, where: str = "the letter", depth: int = 0) -> Iterator[tuple[str, Message]]:
    """Every part with a human-readable position, depth-limited (walk() is not)."""
    yield where, msg
    if depth >= _MAX_DEPTH or not msg.is_multipart():
        return
    payload = msg.get_payload()
    if not isinstance(payload, list):
        return
    for n, child in enumerate(payload, 1):
        if isinstance(child, Message):
            yield from _walk(child, f"{where}, part {n}", depth + 1)


def _defect_text(defect: object, where: str) -> str:
    name = type(defect).__name__.removesuffix("Defect")
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()
    detail = str(defect)
    return f"{where}: {words}" + (f" ({detail})" if detail and detail != "None" else "")


def _body_parts(msg: Message) -> tuple[Message | None, Message | None]:
    get_body = getattr(msg, "get_body", None)
    if get_body is None:  # not an EmailMessage: cannot happen with policy.default
        return None, None
    plain = get_body(preferencelist=("plain",))
    htm = get_body(preferencelist=("html",))
    # get_body() picks a text/plain only where it may be the body; a text/plain with a filename
    # inside multipart/mixed is an attachment, not the body.
    if plain is not None and plain.get_content_disposition() == "attachment":
        plain = None
    if htm is not None and htm.get_content_disposition() == "attachment":
        htm = None
    return plain, htm


# --------------------------------------------------------------------------- headers


def _raw_header(msg: Message, name: str) -> str | None:
    """The first header of that name, unfolded, undecoded (str; 8-bit bytes as surrogates)."""
    lname = name.lower()
    for key, value in msg.raw_items() if hasattr(msg, "raw_items") else msg.items():
        if key.lower() == lname:
            return re.sub(r"\r?\n(?=[ \t])", "", str(value)).rstrip("\r\n")
    return None


def _has_surrogates(s: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in s)


def _fix_8bit(s: str) -> str:
    """Raw 8-bit bytes in a header (no RFC 2047) arrive as surrogates: decode them as text."""
    if not _has_surrogates(s):
        return s
    return _decode_bytes(s.encode("utf-8", "surrogateescape"), None)[0]


def _header_obj(msg: Message, name: str):
    raw = _raw_header(msg, name)
    if raw is None:
        return None
    return _POLICY.header_factory(name, _fix_8bit(raw))


def _header_text(msg: Message, name: str, defects: list[str] | None = None) -> str | None:
    raw = _raw_header(msg, name)
    if raw is None:
        return None
    fixed = _fix_8bit(raw)
    try:
        header = _POLICY.header_factory(name, fixed)
        text = str(header)
        if defects is not None:
            defects.extend(_defect_text(d, name) for d in header.defects)
    except Exception:
        text = _decode_words(fixed)
    return " ".join(_fix_8bit(text).split())


def _decode_words(s: str) -> str:
    """RFC 2047 decoding by the old API, tolerant of bad charsets."""
    out = []
    try:
        chunks = decode_header(s)
    except Exception:  # a broken encoded-word (bad base64): the raw text is all we have
        return s
    for chunk, cs in chunks:
        if isinstance(chunk, bytes):
            out.append(_decode_bytes(chunk, cs)[0])
        else:
            out.append(chunk)
    return "".join(out)


def _addresses(msg: Message, name: str, defects: list[str]) -> tuple[Address, ...]:
    raw = _raw_header(msg, name)
    if raw is None or not raw.strip():
        return ()
    pairs: list[tuple[str, str]] = []
    try:
        header = _header_obj(msg, name)
        defects.extend(_defect_text(d, name) for d in header.defects)
        for a in header.addresses:
            pairs.append((a.display_name or "", a.addr_spec or ""))
    except Exception:
        defects.append(f"{name} could not be read as addresses; read leniently")
        pairs = [(n, a) for n, a in getaddresses([_decode_words(_fix_8bit(raw))])]
    out = []
    for nm, addr in pairs:
        addr = addr.strip().strip("<>").strip().lower()
        if not addr or addr == "<>":
            continue
        if "@" not in addr:
            defects.append(f"{name}: {addr!r} is not an e-mail address (no domain)")
        nm = " ".join(_fix_8bit(nm).split())
        if "=?" in nm:
            nm = _decode_words(nm)
        out.append(Address(addr, nm))
    if not out:
        defects.append(f"{name} holds no readable address: {raw.strip()[:80]!r}")
    return tuple(out)


_MSGID = re.compile(r"<\s*([^<>\s]+?)\s*>")


def _msgids(raw: str | None) -> list[str]:
    if not raw:
        return []
    raw = _fix_8bit(raw)
    found = [f"<{m}>" for m in _MSGID.findall(raw)]
    if not found:  # ids written without the angle brackets
        found = [f"<{t.strip('<>')}>" for t in raw.replace(",", " ").split() if "@" in t]
    return list(dict.fromkeys(found))


def _msgid(raw: str | None) -> str | None:
    ids = _msgids(raw)
    return ids[0] if ids else None


def _date(msg: Message, defects: list[str]) -> datetime | None:
    raw = _raw_header(msg, "Date")
    if raw is None:
        return None
    try:
        dt = _POLICY.header_factory("Date", _fix_8bit(raw)).datetime
    except Exception:
        dt = None
    if dt is None:
        defects.append(f"Date cannot be read: {raw.strip()[:60]!r}")
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


def _return_path(msg: Message) -> str | None:
    raw = _raw_header(msg, "Return-Path")
    if raw is None:
        return None
    value = re.sub(r"\([^()]*\)", "", _fix_8bit(raw)).strip()
    value = value.strip("<>").strip()
    return value.lower()


# --------------------------------------------------------------------------- charsets

_CHARSET_ALIASES = {
    "win-1251": "cp1251",
    "win1251": "cp1251",
    "windows1251": "cp1251",
    "cp-1251": "cp1251",
    "x-cp1251": "cp1251",
    "x-win1251": "cp1251",
    "koi8r": "koi8_r",
    "koi8": "koi8_r",
    "x-koi8-r": "koi8_r",
    "koi8-ru": "koi8_u",
    "utf8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
    "x-unknown": "",
    "unknown-8bit": "",
    "x-user-defined": "",
    "default": "",
}
_PRETTY = {"cp1251": "windows-1251", "koi8-r": "koi8-r", "utf-8": "utf-8", "ascii": "us-ascii"}


def _codec(declared: str | None) -> str | None:
    if not declared:
        return None
    name = declared.strip().strip("\"'").lower()
    name = _CHARSET_ALIASES.get(name, name)
    if not name:
        return None
    try:
        info = codecs.lookup(name)
    except LookupError:
        return None
    if not getattr(info, "_is_text_encoding", True):  # base64, zlib, rot13 …
        return None
    return info.name


_HIGH32 = [bytes([b]) for b in range(0xE0, 0x100)]
_MID32 = [bytes([b]) for b in range(0xC0, 0xE0)]


def _guess_cyrillic(data: bytes) -> tuple[str, str]:
    """Order windows-1251 / koi8-r by which one makes most letters lower-case."""
    hi_cp1251 = sum(data.count(b) for b in _HIGH32)
    hi_koi8 = sum(data.count(b) for b in _MID32)
    return ("cp1251", "koi8-r") if hi_cp1251 >= hi_koi8 else ("koi8-r", "cp1251")


def _decode_bytes(data: bytes, declared: str | None) -> tuple[str, str, str | None]:
    """(text, charset used, note when the declared charset was not used)."""
    enc = _codec(declared)
    note = None
    if enc:
        try:
            return data.decode(enc), _PRETTY.get(enc, enc), None
        except UnicodeDecodeError:
            note = f"the bytes are not valid {declared}"
    elif declared and declared.strip().lower() not in _CHARSET_ALIASES:
        note = f"unknown charset {declared!r}"
    if enc != "utf-8":
        try:
            text = data.decode("utf-8")
            return text, "utf-8", (note and f"{note}; decoded as utf-8")
        except UnicodeDecodeError:
            pass
    # utf-8 with a little damage (a cut-off letter, one stray byte) is still utf-8: windows-1251 or
    # koi8-r text read as utf-8 fails on nearly every non-ASCII byte
    text = data.decode("utf-8", "replace")
    damaged = text.count("\ufffd") - data.decode("utf-8", "ignore").count("\ufffd")
    valid = len(text) - len(text.encode("ascii", "ignore")) - damaged  # well-formed multi-byte chars
    if valid >= 4 * damaged:
        return text, "utf-8", (note or "no charset declared") + (
            f"; decoded as utf-8 with {damaged} unreadable character(s) replaced"
        )
    first, second = _guess_cyrillic(data)
    for cand in (first, second):
        try:
            text = data.decode(cand)
            pretty = _PRETTY.get(codecs.lookup(cand).name, cand)
            return text, pretty, (note or "no charset declared") + f"; decoded as {pretty}"
        except UnicodeDecodeError:
            continue
    return data.decode(enc or "utf-8", "replace"), enc or "utf-8", (note or "undecodable bytes") + (
        "; unreadable characters replaced"
    )


def _part_text(part: Message, defects: list[str]) -> tuple[str, str | None]:
    known = len(part.defects)
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        payload = b""
    for d in part.defects[known:]:
        defects.append(_defect_text(d, f"the {part.get_content_type()} body"))
    declared = part.get_param("charset")
    if isinstance(declared, tuple):  # RFC 2231 form
        declared = collapse_rfc2231_value(declared)
    declared = str(declared) if declared else None
    text, used, note = _decode_bytes(payload, declared)
    if note and (declared or _has_high_bytes(payload)):
        defects.append(f"{part.get_content_type()} part: {note}")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.lstrip("\n").rstrip(), used  # trailing blank lines and spaces are noise


def _has_high_bytes(data: bytes) -> bool:
    return not data.isascii()


# --------------------------------------------------------------------------- HTML

REMOTE_IMAGE_ATTR = "data-remote-src"
_REMOTE_SCHEME = "crmhub-remote-image"

_TAGS = (set(nh3.ALLOWED_TAGS) - {"area", "map"}) | {"font"}
_ATTRIBUTES: dict[str, set[str]] = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
_ATTRIBUTES["*"] = {"style", "title", "lang", "dir", "align"}
_ATTRIBUTES["a"] = {"href", "title"}
_ATTRIBUTES["img"] = {"src", "alt", "width", "height", "title", "align"}
_ATTRIBUTES["table"] = _ATTRIBUTES.get("table", set()) | {
    "width", "border", "cellpadding", "cellspacing", "bgcolor",
}  # fmt: skip
for _cell in ("td", "th"):
    _ATTRIBUTES[_cell] = _ATTRIBUTES.get(_cell, set()) | {"width", "height", "valign", "bgcolor"}
_ATTRIBUTES["tr"] = _ATTRIBUTES.get("tr", set()) | {"valign", "bgcolor"}
_ATTRIBUTES["font"] = {"color", "size", "face"}
_STYLE_PROPERTIES = {
    "color", "background-color", "font", "font-family", "font-size", "font-style", "font-weight",
    "text-align", "text-decoration", "text-indent", "line-height", "vertical-align", "white-space",
    "margin", "margin-top", "margin-bottom", "margin-left", "margin-right",
    "padding", "padding-top", "padding-bottom", "padding-left", "padding-right",
    "border", "border-top", "border-bottom", "border-left", "border-right", "border-collapse",
    "border-color", "border-style", "border-width", "width", "height", "max-width", "min-width",
}  # fmt: skip
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _attribute_filter(tag: str, attr: str, value: str) -> str | None:
    v = value.strip()
    if tag == "img" and attr == "src":
        low = v.lower()
        if low.startswith(("http://", "https://")):
            # an unknown scheme: a browser that ever sees it loads nothing
            return f"{_REMOTE_SCHEME}:{v}"
        if low.startswith("cid:"):
            return "cid:" + unquote(v[4:]).strip().strip("<>")
        return None  # data:, relative, file: …
    if attr in ("href", "src", "cite") and not _SCHEME.match(v):
        return None  # relative URLs would point into the CRM itself
    return value


_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    clean_content_tags={"script", "style", "title", "noscript", "template", "iframe", "object", "embed",
                        "svg", "math", "textarea", "select", "xml"},
    attributes=_ATTRIBUTES,
    attribute_filter=_attribute_filter,
    strip_comments=True,
    link_rel="noopener noreferrer nofollow",
    set_tag_attribute_values={"a": {"target": "_blank"}},
    url_schemes={"http", "https", "mailto", "tel", "cid", _REMOTE_SCHEME},
    filter_style_properties=_STYLE_PROPERTIES,
) if hasattr(nh3, "Cleaner") else None  # fmt: skip

_SHOWN_CID = re.compile(r'<img\b[^>]*\bsrc="cid:([^"]+)"', re.IGNORECASE)
_IMG = re.compile(r"<img\b([^>]*)>", re.IGNORECASE)  # nh3 escapes ">" inside attribute values
_ATTR = re.compile(r'([^\s="]+)(?:="([^"]*)")?')


def _rewrite_img(match: re.Match[str], found: list[str]) -> str:
    attrs = [(k.lower(), html.unescape(v or "")) for k, v in _ATTR.findall(match.group(1))]
    src = next((v for k, v in attrs if k == "src"), "")
    if not src.startswith(f"{_REMOTE_SCHEME}:"):
        return match.group(0)
    size = {k: v.strip().lower().removesuffix("px") for k, v in attrs if k in ("width", "height")}
    if any(v in ("0", "1") for v in size.values()):
        return ""  # a tracking pixel: nothing to show, ever
    url = src[len(_REMOTE_SCHEME) + 1 :]
    found.append(url)
    out = [f'{REMOTE_IMAGE_ATTR}="{html.escape(url, quote=True)}"']
    out += [f'{k}="{html.escape(v, quote=True)}"' for k, v in attrs if k != "src"]
    return "<img " + " ".join(out) + ">"


def sanitize_html(source: str) -> tuple[str, bool]:
    """(safe HTML, whether it holds click-to-load remote images)."""
    if _CLEANER is not None:
        cleaned = _CLEANER.clean(source)
    else:  # older nh3 without Cleaner
        cleaned = nh3.clean(
            source,
            tags=_TAGS,
            clean_content_tags={"script", "style", "title", "noscript", "template", "iframe", "object"},
            attributes=_ATTRIBUTES,
            attribute_filter=_attribute_filter,
            link_rel="noopener noreferrer nofollow",
            url_schemes={"http", "https", "mailto", "tel", "cid", _REMOTE_SCHEME},
            filter_style_properties=_STYLE_PROPERTIES,
        )
    found: list[str] = []
    cleaned = _IMG.sub(lambda m: _rewrite_img(m, found), cleaned)
    # the belt to the braces: no loadable remote reference may survive
    cleaned = cleaned.replace(f'src="{_REMOTE_SCHEME}:', 'src="about:blank#')
    return cleaned.strip(), bool(found)


_BLOCK = {
    "p", "div", "table", "tr", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "pre",
    "blockquote", "dl", "dt", "dd", "center", "article", "section", "header", "footer", "aside",
    "nav", "figure", "figcaption", "caption", "details", "summary", "address",
}  # fmt: skip


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.cur: list[str] = []
        self.quote = 0
        self.pre = 0
        self.skip = 0

    def _flush(self, force: bool = False) -> None:
        text = "".join(self.cur).strip()
        self.cur = []
        if text or force:
            prefix = "> " * self.quote
            for line in text.split("\n") if text else [""]:
                self.lines.append((prefix + line.strip()).rstrip())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "title", "head"):
            self.skip += 1
        elif tag == "br":
            self._flush(force=True)
        elif tag in _BLOCK:
            self._flush()
            if tag == "blockquote":
                self.quote += 1
            elif tag == "pre":
                self.pre += 1
            elif tag == "li":
                self.cur.append("• ")
        elif tag in ("td", "th"):
            self.cur.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "title", "head"):
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK:
            self._flush()
            if tag == "blockquote":
                self.quote = max(0, self.quote - 1)
            elif tag == "pre":
                self.pre = max(0, self.pre - 1)
            if tag in ("p", "table", "blockquote", "ul", "ol") or tag.startswith("h"):
                self.lines.append("> " * self.quote if self.quote else "")

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.pre:
            self.cur.append(data.replace("\xa0", " "))
        else:
            self.cur.append(re.sub(r"\s+", " ", data))


def html_to_text(source: str) -> str:
    parser = _TextExtractor()
    parser.feed(source)
    parser.close()
    parser._flush()
    lines = [line.rstrip() for line in parser.lines]
    return _squeeze_blank_lines(lines)


def _squeeze_blank_lines(lines: list[str]) -> str:
    out: list[str] = []
    for line in lines:
        blank = not line.strip(" >")
        if blank and (not out or not out[-1].strip(" >")):
            continue
        out.append("" if blank and not line.startswith(">") else line)
    while out and not out[-1].strip(" >"):
        out.pop()
    return "\n".join(out).strip()


# --------------------------------------------------------------------------- quoted history

_SEPARATOR = re.compile(
    r"^\s*-{2,}\s*(исходное сообщение|original message|ursprüngliche nachricht|message d'origine)"
    r"\s*-{2,}\s*$",
    re.IGNORECASE,
)
_HDR_FROM = re.compile(r"^\s*(\*\s*)?(от|from)\s*:\s*\S", re.IGNORECASE)
_HDR_NEXT = re.compile(
    r"^\s*(\*\s*)?(отправлено|дата|sent|date|кому|to|тема|subject|копия|cc)\s*:", re.IGNORECASE
)
_UNDERSCORES = re.compile(r"^\s*_{10,}\s*$")
_ATTRIBUTION = re.compile(
    r"(пишет|написал\(а\)|написала|написал|wrote|schrieb|a écrit)\s*:\s*$", re.IGNORECASE
)
_DATE_LIKE = re.compile(r"\d{1,2}[:.]\d{2}|\b\d{4}\b")


def _is_header_block(lines: list[str], i: int) -> bool:
    """Outlook's reply header without a separator: From:/От: followed by Sent:/Кому:/… lines."""
    if not _HDR_FROM.match(lines[i]):
        return False
    following = [line for line in lines[i + 1 : i + 5] if line.strip()]
    return sum(1 for line in following[:3] if _HDR_NEXT.match(line)) >= 2


def _next_nonblank(lines: list[str], i: int) -> str:
    for line in lines[i + 1 :]:
        if line.strip():
            return line
    return ""


def fold_quotes(text: str) -> str:
    """The new part of a reply: see the module docstring for the rules."""
    lines = text.split("\n")
    cut = len(lines)
    for i, line in enumerate(lines):
        if _SEPARATOR.match(line) or _is_header_block(lines, i):
            cut = i
            break
        if _UNDERSCORES.match(line):
            nxt = next((j for j in range(i + 1, len(lines)) if lines[j].strip()), None)
            if nxt is not None and _is_header_block(lines, nxt):
                cut = i
                break
    head = lines[:cut]
    drop: set[int] = set()
    for i, line in enumerate(head):
        if line.lstrip().startswith(">"):
            drop.add(i)
            continue
        s = line.strip()
        if s.endswith(":") and _next_nonblank(head, i).lstrip().startswith(">"):
            if _ATTRIBUTION.search(s) or "@" in s or _DATE_LIKE.search(s):
                drop.add(i)
                # an attribution wrapped onto two lines: "On …, Name <" / "addr> wrote:"
                if i > 0 and head[i - 1].strip() and not head[i - 1].lstrip().startswith(">"):
                    prev = head[i - 1].strip()
                    if _DATE_LIKE.search(prev) and not prev.endswith((".", "!", "?")):
                        drop.add(i - 1)
    kept = [line.rstrip() for i, line in enumerate(head) if i not in drop]
    result = _squeeze_blank_lines(kept)
    return result if result else text.strip()


# --------------------------------------------------------------------------- attachments

_REPORT_TYPES = {
    "message/delivery-status",
    "message/global-delivery-status",
    "text/rfc822-headers",
    "message/global-headers",
    "message/disposition-notification",
    "message/global-disposition-notification",
    "message/feedback-report",
}
_BODY_TYPES = {
    "text/plain", "text/html", "text/enriched", "text/richtext", "text/x-amp-html", "text/watch-html",
}  # fmt: skip


@dataclass
class _Parts:
    """What the walk over the MIME tree collects besides the chosen body parts."""

    body_ids: set[int]
    shown_cids: set[str]  # content-ids the sanitised HTML shows (without the angle brackets)
    defects: list[str]
    files: list[Attachment] = field(default_factory=list)
    text_fragments: list[Message] = field(default_factory=list)  # more text/plain of the body


def _collect(part: Message, parent: str, acc: _Parts, depth: int = 0) -> None:
    ctype = part.get_content_type()
    if depth > _MAX_DEPTH:
        acc.defects.append("the MIME structure is nested too deeply; the deepest parts are ignored")
        return
    if ctype in _REPORT_TYPES:
        return
    if ctype in ("message/rfc822", "message/global"):
        if parent == "multipart/report":
            return  # our own returned letter inside a bounce: not a user file
        acc.files.append(_message_attachment(part, len(acc.files) + 1, acc.defects))
        return
    if part.get_content_maintype() == "multipart" and not part.is_multipart():
        return  # no boundary: nothing to split (the body text holds it when it is the whole letter)
    if part.is_multipart():
        payload = part.get_payload()
        for child in payload if isinstance(payload, list) else ():
            if isinstance(child, Message):
                _collect(child, ctype, acc, depth + 1)
        return
    if id(part) in acc.body_ids:
        return
    disposition = part.get_content_disposition()
    filename = _filename(part)
    nameless_inline = not filename and disposition != "attachment"
    if ctype in _BODY_TYPES and (parent == "multipart/alternative" or nameless_inline):
        # another rendition of the body, or (Apple Mail: text, picture, text) more of its text
        if ctype == "text/plain" and parent != "multipart/alternative":
            acc.text_fragments.append(part)
        return
    known = len(part.defects)  # those of the parse are reported already; decoding may add more
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        data = b""
    for d in part.defects[known:]:
        acc.defects.append(_defect_text(d, f"attachment {filename or ctype}"))
    content_id = _content_id(part)
    inline = disposition == "inline" or (
        disposition is None and content_id is not None and parent == "multipart/related"
    )
    acc.files.append(Attachment(
        filename=filename or _synth_name(ctype, len(acc.files) + 1),
        content_type=ctype,
        size=len(data),
        data=data,
        inline=inline,
        content_id=content_id,
        shown_in_body=content_id is not None and content_id.strip("<>") in acc.shown_cids,
    ))  # fmt: skip


def _message_attachment(part: Message, n: int, defects: list[str]) -> Attachment:
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    data = b""
    subject = ""
    if isinstance(inner, Message):
        try:
            data = inner.as_bytes(policy=_POLICY.clone(linesep="\r\n"))
        except Exception:
            try:
                data = inner.as_bytes()
            except Exception as exc:
                defects.append(f"an attached letter could not be re-serialised: {exc}")
        subject = _guard(
            defects, "an attached letter's subject", lambda: _header_text(inner, "Subject") or "", ""
        )
    else:
        raw = part.get_payload(decode=True)
        data = raw if isinstance(raw, bytes) else b""
    name = _filename(part) or (f"{stem}.eml" if (stem := sanitize_filename(subject, default="", limit=100))
                               else _synth_name("message/rfc822", n))
    return Attachment(
        filename=name,
        content_type=part.get_content_type(),
        size=len(data),
        data=data,
        inline=False,
        content_id=_content_id(part),
    )


def _content_id(part: Message) -> str | None:
    raw = _raw_header(part, "Content-ID")
    if raw is None or not raw.strip():
        return None
    value = raw.strip()
    if not (value.startswith("<") and value.endswith(">")):
        value = f"<{value.strip('<>')}>"
    return value


def _filename(part: Message) -> str:
    name = None
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if not name:
        try:
            value = part.get_param("name")
            if isinstance(value, tuple):
                value = collapse_rfc2231_value(value)
            name = str(value) if value else None
        except Exception:
            name = None
    if not name:
        return ""
    name = _fix_8bit(str(name))
    if "=?" in name:
        name = _decode_words(name)
    return sanitize_filename(name, default="")


_EXTENSIONS = {  # a fixed table: mimetypes reads the machine's /etc/mime.types, which varies
    "message/rfc822": ".eml", "message/global": ".eml", "text/plain": ".txt", "text/html": ".html",
    "text/calendar": ".ics", "text/csv": ".csv", "application/pdf": ".pdf", "application/zip": ".zip",
    "image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp",
    "image/heic": ".heic", "image/tiff": ".tif", "audio/mpeg": ".mp3", "audio/ogg": ".ogg",
    "video/mp4": ".mp4", "application/msword": ".doc", "application/vnd.ms-excel": ".xls",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
}  # fmt: skip


def _synth_name(ctype: str, n: int) -> str:
    return f"attachment-{n}{_EXTENSIONS.get(ctype, '.bin')}"


# --------------------------------------------------------------------------- classification


@dataclass
class _Flags:
    is_auto_reply: bool = False
    is_bounce: bool = False
    is_bulk: bool = False
    is_noreply: bool = False
    reasons: list[str] = field(default_factory=list)


_AUTO_SUBJECT = re.compile(
    r"^\s*(автоответ|автоматический ответ|auto|autoreply|auto-reply|automatic reply|out of office|"
    r"абонент отсутствует|отсутствую|нет на месте)\b",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery status notification|failure notice|returned mail|delivery failed|"
    r"mail delivery failure|не доставлен|недоставлен|возвращ[её]нное|ошибка доставки",
    re.IGNORECASE,
)
_NOREPLY_COMPACT = ("noreply", "donotreply", "dontreply", "neotvechat", "neotvechaite", "neotvechayte")


def _local_part(addr: str) -> str:
    return addr.rsplit("@", 1)[0].lower() if "@" in addr else addr.lower()


def _classify(msg: Message, from_addr: str, subject: str, return_path: str | None) -> _Flags:
    f = _Flags()
    null_sender = return_path == ""
    local = _local_part(from_addr)
    compact = re.sub(r"[-_.]", "", local.split("+", 1)[0])
    header = lambda name: (_header_text(msg, name) or "").strip()  # noqa: E731
    ctype = msg.get_content_type()
    report_type = str(msg.get_param("report-type") or "").lower() if ctype == "multipart/report" else ""

    # bounces
    if report_type == "delivery-status":
        f.is_bounce = True
        f.reasons.append("multipart/report; report-type=delivery-status")
    elif any(p.get_content_type() in ("message/delivery-status", "message/global-delivery-status")
             for _, p in _walk(msg)):  # fmt: skip
        f.is_bounce = True
        f.reasons.append("a message/delivery-status part")
    if compact == "mailerdaemon":
        f.is_bounce = True
        f.reasons.append("sender MAILER-DAEMON")
    elif compact == "postmaster" and (null_sender or _BOUNCE_SUBJECT.search(subject)):
        f.is_bounce = True
        f.reasons.append("sender postmaster")
    elif null_sender and _BOUNCE_SUBJECT.search(subject):
        f.is_bounce = True
        f.reasons.append("null Return-Path with a delivery-failure subject")

    # auto-replies (RFC 3834 and the de-facto headers)
    auto_submitted = header("Auto-Submitted").lower()
    if auto_submitted and auto_submitted.split(";", 1)[0].strip() != "no":
        f.is_auto_reply = True
        f.reasons.append(f"Auto-Submitted: {auto_submitted}")
    for name in ("X-Autoreply", "X-Autorespond", "X-Autogenerated", "X-Autoresponder"):
        value = _header_text(msg, name)
        if value is not None and value.strip().lower() not in ("no", "false", "0"):
            f.is_auto_reply = True
            f.reasons.append(f"{name} header")
    precedence = header("Precedence").lower()
    if precedence == "auto_reply":
        f.is_auto_reply = True
        f.reasons.append("Precedence: auto_reply")
    if report_type == "disposition-notification":
        f.is_auto_reply = True
        f.reasons.append("a read receipt (disposition-notification)")
    if _AUTO_SUBJECT.match(subject) and (
        null_sender or precedence or _raw_header(msg, "X-Auto-Response-Suppress") is not None
    ):
        f.is_auto_reply = True
        f.reasons.append("auto-reply subject with a null Return-Path / Precedence / X-Auto-Response-Suppress")
    if null_sender and not f.is_bounce and not f.is_auto_reply:
        f.is_auto_reply = True
        f.reasons.append("null Return-Path <> (only machines send from it)")

    # bulk
    if precedence in ("bulk", "list", "junk"):
        f.is_bulk = True
        f.reasons.append(f"Precedence: {precedence}")
    for name in ("List-Id", "List-Unsubscribe"):
        if _raw_header(msg, name) is not None:
            f.is_bulk = True
            f.reasons.append(f"{name} header")

    # no-reply senders
    if compact.startswith(_NOREPLY_COMPACT) or compact.endswith("noreply") or compact == "mailerdaemon":
        f.is_noreply = True
        f.reasons.append(f"sender {local}@")
    return f


# --------------------------------------------------------------------------- bounces


def _dsn_blocks(part: Message) -> list[dict[str, str]]:
    payload = part.get_payload()
    blocks: list[dict[str, str]] = []
    if isinstance(payload, list):
        for sub in payload:
            if isinstance(sub, Message):
                items = sub.raw_items() if hasattr(sub, "raw_items") else sub.items()
                blocks.append({k.lower(): " ".join(str(v).split()) for k, v in items})
        return blocks
    text = payload.decode("latin-1") if isinstance(payload, bytes) else str(payload or "")
    for chunk in re.split(r"\r?\n\s*\r?\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in chunk.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
        if fields:
            blocks.append(fields)
    return blocks


def _after_type(value: str) -> str:
    """"rfc822; a@b" → "a@b"; "smtp; 550 …" → "550 …"."""
    return value.split(";", 1)[1].strip() if ";" in value else value.strip()


def _headers_of(part: Message) -> Message | None:
    ctype = part.get_content_type()
    if ctype in ("message/rfc822", "message/global"):
        payload = part.get_payload()
        # a message/* part's payload is a list holding the one enclosed Message (typeshed: Message | str)
        return cast(Message, payload[0]) if isinstance(payload, list) and payload else None
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return None
    return BytesHeaderParser(policy=_POLICY).parsebytes(data)


def _bounce_info(msg: Message, body_text: str) -> Bounce:
    recipients: list[BounceRecipient] = []
    original_id: str | None = None
    original_subject = ""
    reporting = ""
    for _, part in _walk(msg):
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            for block in _dsn_blocks(part):
                if "reporting-mta" in block:
                    reporting = _after_type(block["reporting-mta"])
                rcpt = block.get("final-recipient") or block.get("original-recipient")
                if rcpt:
                    recipients.append(BounceRecipient(
                        address=_after_type(rcpt).strip("<>").lower(),
                        action=block.get("action", "").lower(),
                        status=block.get("status", "").split(" ", 1)[0],
                        diagnostic=_after_type(block.get("diagnostic-code", "")),
                    ))  # fmt: skip
        elif ctype in ("text/rfc822-headers", "message/global-headers", "message/rfc822", "message/global"):
            if original_id is None:
                headers = _headers_of(part)
                if headers is not None:
                    original_id = _msgid(_raw_header(headers, "Message-ID"))
                    original_subject = _header_text(headers, "Subject") or ""
    if original_id is None:  # a plain-text bounce quoting the headers
        m = re.search(r"^\s*Message-ID:\s*(<[^<>\s]+>)", body_text, re.IGNORECASE | re.MULTILINE)
        original_id = m.group(1) if m else None
    if not recipients:  # Postfix/Exim/qmail text: "<addr>: reason" or an indented address line
        m = re.search(r"^<([^<>\s@]+@[^<>\s]+)>:\s*(.*)", body_text, re.MULTILINE) or re.search(
            r"^\s+([^<>\s@]+@[^<>\s]+)\s*$\n?(.*)", body_text, re.MULTILINE
        )
        if m:
            status = re.search(r"\b([245]\.\d{1,3}\.\d{1,3})\b", body_text)
            recipients.append(BounceRecipient(
                address=m.group(1).lower(),
                action="failed",
                status=status.group(1) if status else "",
                diagnostic=" ".join(m.group(2).split()),
            ))  # fmt: skip
    return Bounce(
        recipients=tuple(recipients),
        original_message_id=original_id,
        original_subject=original_subject,
        reporting_mta=reporting,
    )
