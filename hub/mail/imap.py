"""IMAP intake for one mailbox folder: resume by UIDVALIDITY + last UID, IDLE (or polling), reconnect.

``FolderWatcher`` logs in (implicit TLS, STARTTLS or plain), selects the folder and hands every
letter it has not handed before, in UID order, to ``on_letter(LetterRef, raw bytes)``; after each
letter it remembers ``"<uidvalidity>:<uid>"`` through the cursor store (``MessageIntakePort.cursor``
and ``set_cursor``), so a restart or a reconnect picks up exactly what arrived meanwhile. With
``on_letters`` the letters of a FETCH go on several at a time instead, and the cursor is saved by it
in the unit of work that stores them. When the
folder's UIDVALIDITY changes (the mailbox was rebuilt or restored) every letter is offered again;
the core drops the ones it has by their Message-ID, so nothing is doubled.

Between batches it waits in IDLE (woken by the server's ``EXISTS``; re-issued every few minutes, as
servers drop idle connections after 30) or, when the server has no IDLE or the mailbox says
``idle = false``, polls every ``poll_seconds``. Any failure closes the connection and reconnects
with exponential backoff; a refused login waits longer and says so in ``health()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aioimaplib import aioimaplib

from hub import background, backoff
from hub.config import MailboxConfig

log = logging.getLogger(__name__)

FETCH_BATCH = 100
IDLE_SECONDS = 9 * 60  # renew IDLE well before the 29-minute limit of RFC 2177 and NAT timeouts
COMMAND_TIMEOUT = 60.0
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_FETCH_UID = re.compile(rb"UID (\d+)")


class AuthFailed(Exception):
    """The server refused our login: retrying at once would not help (and may lock the account)."""


class ImapError(Exception):
    """The server answered a command with NO or BAD."""


class CursorStore(Protocol):
    async def cursor(self, name: str) -> str | None: ...

    async def set_cursor(self, name: str, value: str) -> None: ...


@dataclass(frozen=True, slots=True)
class LetterRef:
    """Where a letter was found: the delivery key of the intake is ``mailbox:uidvalidity:uid``."""

    mailbox: str
    folder: str
    uidvalidity: int
    uid: int

    @property
    def key(self) -> str:
        return f"{self.mailbox}:{self.folder}:{self.uidvalidity}:{self.uid}"

    @property
    def position(self) -> str:
        """The cursor's value once this letter is taken: ``"<uidvalidity>:<uid>"``."""
        return f"{self.uidvalidity}:{self.uid}"


OnLetter = Callable[[LetterRef, bytes], Awaitable[Any]]
# several letters of one FETCH, in UID order, and the cursor's name: take them and set the cursor to
# the position of the last of the unbroken run taken from the first one on, in one unit of work;
# → the length of that run (shorter than the list: the next letter failed and is offered again)
OnLetters = Callable[[list[tuple[LetterRef, bytes]], str], Awaitable[int]]
UNIT_LETTERS = 20  # letters per unit of work: SQLite's one writer is not held for long


class LetterNotTaken(Exception):
    """A letter of a batch failed (the ones before it are kept); the folder is read again from it."""


def ssl_context_for(mailbox: MailboxConfig) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if mailbox.ca_file:
        context.load_verify_locations(cafile=mailbox.ca_file)
    return context


def _check(response: Any, what: str) -> Any:
    if response.result != "OK":
        text = b" ".join(line for line in response.lines if isinstance(line, bytes | bytearray))
        raise ImapError(f"{what}: {response.result} {text.decode(errors='replace')[:300]}")
    return response


def parse_uidvalidity(lines: list[Any]) -> int:
    for line in lines:
        if isinstance(line, bytes | bytearray) and (found := _UIDVALIDITY.search(line)):
            return int(found.group(1))
    raise ImapError("SELECT gave no UIDVALIDITY")


def parse_search(lines: list[Any]) -> list[int]:
    """The UIDs of a UID SEARCH answer (the first line that is all numbers, or empty)."""
    for line in lines:
        if isinstance(line, bytes | bytearray):
            words = bytes(line).split()
            if words and all(w.isdigit() for w in words):
                return [int(w) for w in words]
    return []


def parse_fetch(lines: list[Any]) -> list[tuple[int, bytes]]:
    """(UID, raw letter) pairs of a ``UID FETCH … (UID BODY.PEEK[])`` answer."""
    letters: list[tuple[int, bytes]] = []
    uid: int | None = None
    for line in lines:
        if isinstance(line, bytearray):
            if uid is not None:
                letters.append((uid, bytes(line)))
                uid = None
        elif isinstance(line, bytes) and b"FETCH" in line and (found := _FETCH_UID.search(line)):
            uid = int(found.group(1))
    return letters


def parse_cursor(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    validity, _, uid = value.partition(":")
    if validity.isdigit() and uid.isdigit():
        return int(validity), int(uid)
    return None


class FolderWatcher:
    def __init__(self, mailbox: MailboxConfig, *, store: CursorStore, on_letter: OnLetter,
                 folder: str | None = None, ssl_context: ssl.SSLContext | None = None,
                 max_backoff: float = 300.0, idle_seconds: float = IDLE_SECONDS,
                 on_letters: OnLetters | None = None) -> None:
        self.mailbox = mailbox
        self.folder = folder or mailbox.folder
        self.store = store
        self.on_letter = on_letter
        self.on_letters = on_letters
        self.ssl_context = ssl_context
        self.max_backoff = max_backoff
        self.idle_seconds = idle_seconds
        self.state = "connecting"
        self.reason = ""
        self.letters = 0  # letters handed on since start
        self._task: asyncio.Task[None] | None = None
        self._client: aioimaplib.IMAP4 | None = None
        self._wake = asyncio.Event()

    @property
    def cursor_name(self) -> str:
        return f"imap:{self.mailbox.name}:{self.folder}"

    def health(self) -> str:
        return f"{self.state}: {self.reason}" if self.reason else self.state

    async def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"imap-{self.mailbox.name}")

    async def stop(self) -> None:
        await background.cancel(self._task)
        self._task = None
        await self._close()

    # --- the loop ------------------------------------------------------------------------------------------

    async def _supervise(self) -> None:
        failures = 0
        while True:
            auth_failed = False
            try:
                self.state, self.reason = "connecting", ""
                await self._session()
            except asyncio.CancelledError:
                raise
            except AuthFailed as error:
                auth_failed = True
                self.state, self.reason = "auth_failed", str(error)[:200]
                log.error("mailbox %s: login refused: %s", self.mailbox.name, error)
            except Exception as error:
                self.state, self.reason = "disconnected", f"{type(error).__name__}: {error}"[:200]
                log.warning("mailbox %s: %s; reconnecting", self.mailbox.name, self.reason)
            finally:
                await self._close()
            failures += 1
            await asyncio.sleep(backoff.delay(failures - 1, initial=30.0 if auth_failed else 1.0,
                                              cap=self.max_backoff, jitter=(0.8, 1.2)))

    async def _session(self) -> None:
        client = await self._connect()
        self._client = client
        validity = parse_uidvalidity(_check(await client.select(_quoted(self.folder)), "SELECT").lines)
        self.state = "connected"
        idle = self.mailbox.idle and client.has_capability("IDLE")
        while True:
            await self._catch_up(client, validity)
            if idle:
                await self._idle(client)
            else:
                await self._poll(client)

    async def _connect(self) -> aioimaplib.IMAP4:
        m = self.mailbox
        context = self.ssl_context or ssl_context_for(m)
        if m.imap_tls == "ssl":
            client: aioimaplib.IMAP4 = aioimaplib.IMAP4_SSL(m.imap_host, m.imap_port, timeout=COMMAND_TIMEOUT,
                                                            ssl_context=context)
        else:
            client = aioimaplib.IMAP4(m.imap_host, m.imap_port, timeout=COMMAND_TIMEOUT)
        await client.wait_hello_from_server()
        if m.imap_tls == "starttls":
            await _starttls(client, context, m.imap_host)
        response = await client.login(m.username, m.password)
        if response.result != "OK":
            text = b" ".join(x for x in response.lines if isinstance(x, bytes))
            raise AuthFailed(text.decode(errors="replace"))
        return client

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        with contextlib.suppress(Exception):
            if client.has_pending_idle():
                client.idle_done()
            await asyncio.wait_for(client.logout(), 2)
        with contextlib.suppress(Exception):
            if client.protocol.transport is not None:
                client.protocol.transport.close()

    # --- reading -----------------------------------------------------------------------------------------

    async def _catch_up(self, client: aioimaplib.IMAP4, validity: int) -> None:
        """Hand on every letter after the remembered UID (all of them after a UIDVALIDITY change)."""
        remembered = parse_cursor(await self.store.cursor(self.cursor_name))
        last = remembered[1] if remembered and remembered[0] == validity else 0
        if remembered and remembered[0] != validity:
            log.warning("mailbox %s: UIDVALIDITY of %s changed (%s → %s); reading the folder again",
                        self.mailbox.name, self.folder, remembered[0], validity)
        response = _check(await client.uid_search("UID", f"{last + 1}:*"), "UID SEARCH")
        # "n:*" always names the last letter, even when its UID is below n: filter here
        uids = sorted(uid for uid in parse_search(response.lines) if uid > last)
        for start in range(0, len(uids), FETCH_BATCH):
            batch = uids[start:start + FETCH_BATCH]
            response = _check(await client.uid("fetch", ",".join(map(str, batch)), "(UID BODY.PEEK[])"),
                              "UID FETCH")
            letters = [(LetterRef(self.mailbox.name, self.folder, validity, uid), raw)
                       for uid, raw in sorted(parse_fetch(response.lines))]
            if self.on_letters is not None:
                await self._hand_on(letters)
                continue
            for ref, raw in letters:
                await self.on_letter(ref, raw)
                await self.store.set_cursor(self.cursor_name, ref.position)
                self.letters += 1

    async def _hand_on(self, letters: list[tuple[LetterRef, bytes]]) -> None:
        """A FETCH's letters, ``UNIT_LETTERS`` to a unit of work (each sets the cursor in it)."""
        assert self.on_letters is not None
        for start in range(0, len(letters), UNIT_LETTERS):
            unit = letters[start:start + UNIT_LETTERS]
            taken = await self.on_letters(unit, self.cursor_name)
            self.letters += taken
            if taken < len(unit):
                raise LetterNotTaken(f"letter {unit[taken][0].key} was not taken in")

    async def _idle(self, client: aioimaplib.IMAP4) -> None:
        """Wait in IDLE until the folder changes, we are poked, or it is time to renew IDLE."""
        idle = await client.idle_start(timeout=self.idle_seconds)
        self.state = "idle"
        try:
            while client.has_pending_idle():
                waker = asyncio.ensure_future(self._wake.wait())
                push = asyncio.ensure_future(client.wait_server_push(self.idle_seconds + 30))
                done, _ = await asyncio.wait({waker, push}, return_when=asyncio.FIRST_COMPLETED)
                waker.cancel()
                if push not in done:
                    push.cancel()
                    self._wake.clear()
                    break
                lines = push.result()
                if lines == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    break  # renew
                if any(isinstance(x, bytes) and x.endswith(b"EXISTS") for x in lines):
                    break
        finally:
            if client.has_pending_idle():
                client.idle_done()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(idle, COMMAND_TIMEOUT)
        self.state = "connected"

    async def _poll(self, client: aioimaplib.IMAP4) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.mailbox.poll_seconds)
        self._wake.clear()
        _check(await client.noop(), "NOOP")


async def _starttls(client: aioimaplib.IMAP4, context: ssl.SSLContext, host: str) -> None:
    """aioimaplib has no STARTTLS: send it, then upgrade the same protocol's transport."""
    protocol = client.protocol
    if "STARTTLS" not in protocol.capabilities:
        raise ImapError("the server does not offer STARTTLS")
    command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
    _check(await protocol.execute(command), "STARTTLS")
    loop = asyncio.get_running_loop()
    protocol.transport = await loop.start_tls(protocol.transport, protocol, context, server_hostname=host)
    await protocol.capability()


def _quoted(folder: str) -> str:
    return folder if re.fullmatch(r"[A-Za-z0-9_.\-/]+", folder) else '"' + folder.replace('"', r"\"") + '"'


async def append_copy(mailbox: MailboxConfig, folder: str, raw: bytes,
                      ssl_context: ssl.SSLContext | None = None) -> None:
    """APPEND a letter we sent to the Sent folder (its own short connection), flagged \\Seen."""
    watcher = FolderWatcher(mailbox, store=_NoCursor(), on_letter=_ignore, folder=folder,
                            ssl_context=ssl_context)
    client = await watcher._connect()
    try:
        _check(await client.append(raw, mailbox=_quoted(folder), flags=r"(\Seen)"), "APPEND")
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.logout(), 2)


class _NoCursor:
    async def cursor(self, name: str) -> str | None:
        return None

    async def set_cursor(self, name: str, value: str) -> None:
        return None


async def _ignore(ref: LetterRef, raw: bytes) -> None:
    return None
