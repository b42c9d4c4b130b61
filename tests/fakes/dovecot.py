"""A real Dovecot IMAP server for the tests: Debian's ``dovecot-imapd`` started in the foreground with
a private configuration, port, maildir and log under a temporary folder (nothing of the system's
Dovecot is used or touched).

    server = Dovecot()
    server.start()                                  # imap on 127.0.0.1:<free port>, imaps too
    server.add_user("zayavki@crm.example.ru", "secret")
    uid = server.append("zayavki@crm.example.ru", raw_bytes)       # → the new UID
    server.reset_uidvalidity("zayavki@crm.example.ru")           # a new UIDVALIDITY, same letters
    server.stop()

Run as root (CI), the login and mail processes run as the package's ``dovenull`` / ``dovecot``
users; run as anyone else, everything runs as that user.
"""

from __future__ import annotations

import contextlib
import grp
import imaplib
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"


def available() -> bool:
    return Path(DOVECOT).exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Dovecot:
    def __init__(self) -> None:
        # Its own folder, not pytest's tmp_path: Dovecot's unprivileged processes must be able to
        # reach it, and pytest's folders are private to the user who runs the tests.
        self.root = Path(tempfile.mkdtemp(prefix="crmhub-dovecot-"))
        self.root.chmod(0o755)
        self.port = free_port()
        self.tls_port = free_port()
        self.users: dict[str, str] = {}
        self.process: subprocess.Popen[bytes] | None = None
        self.cert = self.root / "cert.pem"
        self.key = self.root / "key.pem"

    # --- configuration ----------------------------------------------------------------------------------

    def _ids(self) -> tuple[str, str, str, int, int]:
        """(login user, internal user, internal group, mail uid, mail gid)."""
        if os.geteuid() == 0:
            mail = pwd.getpwnam("dovecot")
            return "dovenull", "dovecot", "dovecot", mail.pw_uid, mail.pw_gid
        me = pwd.getpwuid(os.geteuid()).pw_name
        group = grp.getgrgid(os.getegid()).gr_name
        return me, me, group, os.geteuid(), os.getegid()

    def _write_config(self) -> Path:
        login_user, internal_user, internal_group, uid, gid = self._ids()
        for folder in ("run", "state", "mail", "home"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            for folder in ("mail", "home"):
                os.chown(self.root / folder, uid, gid)
        self._make_certificate()
        config = self.root / "dovecot.conf"
        config.write_text(f"""
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{self.cert}
ssl_key = <{self.key}
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 0
mail_location = maildir:{self.root}/mail/%u
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
imap_idle_notify_interval = 1 mins
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={self.root}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
namespace inbox {{
  inbox = yes
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
}}
""")
        return config

    def _make_certificate(self) -> None:
        if self.cert.exists():
            return
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(self.key), "-out", str(self.cert)],
            check=True, capture_output=True)
        if os.geteuid() == 0:
            os.chmod(self.key, 0o600)

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's self-signed certificate."""
        context = ssl.create_default_context(cafile=str(self.cert))
        return context

    # --- lifecycle ----------------------------------------------------------------------------------------

    def start(self, within: float = 10.0) -> None:
        config = self._write_config()
        self._write_users()
        self.config = config
        self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + within
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.5) as s:
                if s.recv(100).startswith(b"* OK"):
                    return
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dovecot did not start: {self.log()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- mailboxes ----------------------------------------------------------------------------------------

    def _write_users(self) -> None:
        lines = [f"{user}:{{PLAIN}}{password}" for user, password in self.users.items()]
        # a new file, not the old one rewritten: Dovecot notices it by its inode and never reads half
        temporary = self.root / "users.new"
        temporary.write_text("\n".join(lines) + "\n")
        temporary.chmod(0o644)
        os.replace(temporary, self.root / "users")

    def add_user(self, user: str, password: str) -> None:
        """A new mailbox, usable when this returns (Dovecot re-reads its user list when the file's
        modification time changes, which it may not see within the same second: wait for it)."""
        self.users[user] = password
        self._write_users()
        if self.process is None:
            return
        deadline = time.monotonic() + 5
        while True:
            try:
                self.connect(user).logout()
                return
            except imaplib.IMAP4.error:
                if time.monotonic() > deadline:
                    raise
                stamp = time.time() + 2
                os.utime(self.root / "users", (stamp, stamp))
                time.sleep(0.1)

    def connect(self, user: str) -> imaplib.IMAP4:
        imap = imaplib.IMAP4("127.0.0.1", self.port)
        imap.login(user, self.users[user])
        return imap

    def append(self, user: str, raw: bytes, folder: str = "INBOX") -> int:
        """Deliver a letter (IMAP APPEND) and return its UID."""
        imap = self.connect(user)
        try:
            status, data = imap.append(folder, None, None, raw)
            if status != "OK":
                raise RuntimeError(f"APPEND failed: {data!r}")
            text = data[0].decode() if data and data[0] else ""
            # "[APPENDUID <uidvalidity> <uid>] Append completed"
            return int(text.split("APPENDUID", 1)[1].split("]", 1)[0].split()[1])
        finally:
            with contextlib.suppress(Exception):
                imap.logout()

    def uids(self, user: str, folder: str = "INBOX") -> tuple[int, list[int]]:
        """(UIDVALIDITY, UIDs) of a folder."""
        imap = self.connect(user)
        try:
            imap.select(folder)
            validity = int(imap.response("UIDVALIDITY")[1][0])
            _, data = imap.uid("SEARCH", None, "ALL")
            return validity, [int(u) for u in (data[0] or b"").split()]
        finally:
            with contextlib.suppress(Exception):
                imap.logout()

    def messages(self, user: str, folder: str) -> list[bytes]:
        imap = self.connect(user)
        try:
            imap.select(folder)
            _, data = imap.uid("SEARCH", None, "ALL")
            found = []
            for uid in (data[0] or b"").split():
                _, parts = imap.uid("FETCH", uid, "(BODY.PEEK[])")
                found.append(parts[0][1])
            return found
        finally:
            with contextlib.suppress(Exception):
                imap.logout()

    def reset_uidvalidity(self, user: str, folder: str = "INBOX", validity: int | None = None) -> int:
        """Give the folder a new UIDVALIDITY (as a restored or rebuilt mailbox has): its letters keep
        their content and get new UIDs."""
        validity = validity or int(time.time()) + 1000
        subprocess.run([DOVEADM, "-c", str(self.config), "mailbox", "update", "-u", user,
                        "--uid-validity", str(validity), folder], check=True, capture_output=True)
        return validity
