"""The IMAP folder watcher (hub.mail.imap) against a real Dovecot: catching up, IDLE wake-up, resuming
after a restart, a UIDVALIDITY change, implicit TLS and STARTTLS, a refused login."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace

import pytest

from hub.config import MailboxConfig
from hub.mail.imap import FolderWatcher, LetterRef, append_copy
from tests.fakes import dovecot
from tests.integration.conftest import until
from tests.paths import MAIL_FIXTURES

pytestmark = pytest.mark.skipif(not dovecot.available(), reason="dovecot-imapd is not installed")

USER = "zayavki@crm.example.ru"
FIXTURES = MAIL_FIXTURES


def letter(n: int) -> bytes:
    return (f"From: client{n}@example.ru\r\nTo: {USER}\r\nSubject: letter {n}\r\n"
            f"Message-ID: <m{n}@example.ru>\r\n\r\nbody {n}\r\n").encode()


@pytest.fixture(scope="module")
def server() -> Iterator[dovecot.Dovecot]:
    instance = dovecot.Dovecot()
    instance.add_user(USER, "secret")
    instance.add_user("other@crm.example.ru", "secret")
    instance.start()
    yield instance
    instance.remove()


class Memory:
    """A cursor store and a letter sink in one."""

    def __init__(self) -> None:
        self.cursors: dict[str, str] = {}
        self.letters: list[tuple[LetterRef, bytes]] = []

    async def cursor(self, name: str) -> str | None:
        return self.cursors.get(name)

    async def set_cursor(self, name: str, value: str) -> None:
        self.cursors[name] = value

    async def take(self, ref: LetterRef, raw: bytes) -> None:
        self.letters.append((ref, raw))

    def subjects(self) -> list[str]:
        return [raw.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode() for _, raw in self.letters]


def mailbox(server: dovecot.Dovecot, user: str = USER, **kw: object) -> MailboxConfig:
    values = dict(name="zayavki", imap_host="127.0.0.1", imap_port=server.port, imap_tls="none",
                  username=user, password="secret", from_address=user)
    values.update(kw)
    return MailboxConfig(**values)  # type: ignore[arg-type]


async def watch(server: dovecot.Dovecot, memory: Memory, box: MailboxConfig) -> FolderWatcher:
    watcher = FolderWatcher(box, store=memory, on_letter=memory.take, ssl_context=server.ssl_context(),
                            max_backoff=0.2)
    await watcher.start()
    return watcher


async def deliver(server: dovecot.Dovecot, raw: bytes, user: str = USER) -> int:
    return await asyncio.to_thread(server.append, user, raw)


async def test_backlog_idle_restart_and_uidvalidity(server: dovecot.Dovecot) -> None:
    user = "other@crm.example.ru"
    for n in range(1, 4):
        await deliver(server, letter(n), user)
    memory = Memory()
    watcher = await watch(server, memory, mailbox(server, user))
    try:
        await until(lambda: len(memory.letters) == 3)
        assert memory.subjects() == ["letter 1", "letter 2", "letter 3"]
        await until(lambda: watcher.state == "idle")
        await deliver(server, letter(4), user)
        # IDLE woke us (EXISTS), no poll: in IDLE the watcher neither polls nor renews IDLE for 9 minutes
        # and ignores Dovecot's "Still here" (1 minute into IDLE). The push comes ≈0.5 s after the
        # APPEND (at most Dovecot's 30 s idle check without inotify): 45 s tells them apart on any box.
        await until(lambda: len(memory.letters) == 4, within=45)
    finally:
        await watcher.stop()

    # letters that arrive while the hub is down are read at the next start, and only they
    await deliver(server, letter(5), user)
    await deliver(server, letter(6), user)
    watcher = await watch(server, memory, mailbox(server, user))
    try:
        await until(lambda: len(memory.letters) == 6)
        assert memory.subjects()[4:] == ["letter 5", "letter 6"]
        await asyncio.sleep(0.3)
        assert len(memory.letters) == 6
    finally:
        await watcher.stop()

    # a new UIDVALIDITY: every letter is offered again (the core drops known Message-IDs)
    await asyncio.to_thread(server.reset_uidvalidity, user)
    watcher = await watch(server, memory, mailbox(server, user))
    try:
        await until(lambda: len(memory.letters) == 12)
        assert memory.subjects()[6:] == [f"letter {n}" for n in range(1, 7)]
        assert len({ref.uidvalidity for ref, _ in memory.letters}) == 2
    finally:
        await watcher.stop()


@pytest.mark.parametrize("tls", ["ssl", "starttls"])
async def test_tls_modes(server: dovecot.Dovecot, tls: str) -> None:
    port = server.tls_port if tls == "ssl" else server.port
    memory = Memory()
    await deliver(server, letter(100))
    watcher = await watch(server, memory, mailbox(server, imap_tls=tls, imap_port=port))
    try:
        await until(lambda: memory.letters)
        assert watcher.state in ("connected", "idle")
    finally:
        await watcher.stop()


async def test_polling_without_idle(server: dovecot.Dovecot) -> None:
    memory = Memory()
    box = replace(mailbox(server), idle=False, poll_seconds=1)
    watcher = await watch(server, memory, box)
    try:
        await until(lambda: watcher.state == "connected")
        before = len(memory.letters)
        await deliver(server, letter(200))
        await until(lambda: len(memory.letters) > before, within=5)
    finally:
        await watcher.stop()


async def test_refused_login_is_a_clear_state(server: dovecot.Dovecot) -> None:
    memory = Memory()
    watcher = await watch(server, memory, mailbox(server, password="wrong"))
    try:
        await until(lambda: watcher.state == "auth_failed", within=10)
        assert "auth_failed" in watcher.health()
    finally:
        await watcher.stop()


async def test_append_copy_to_sent(server: dovecot.Dovecot) -> None:
    raw = letter(300)
    await append_copy(mailbox(server), "Sent", raw, ssl_context=server.ssl_context())
    found = await asyncio.to_thread(server.messages, USER, "Sent")
    assert any(b"letter 300" in m for m in found)


def test_fixture_folder_is_there() -> None:
    assert (FIXTURES / "expected.json").exists()
