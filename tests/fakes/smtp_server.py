"""An SMTP server for the tests (aiosmtpd) that keeps what it receives and answers with an error on
demand: ``server.fail_rcpt = "451 4.7.1 Try again later"`` or ``server.fail_data = "554 5.7.1 Rejected"``
(each used once).

Without ``accounts`` it is a relay that offers no AUTH (a local Postfix taking mail by IP). With
``SmtpServer(accounts={"login": "password"})`` it offers AUTH PLAIN/LOGIN over the plain connection
and keeps the logins made in ``logins``; ``auth_required=True`` also refuses MAIL before a login."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.fakes.dovecot import free_port


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: Any) -> str:
        if self.server.fail_rcpt:
            answer, self.server.fail_rcpt = self.server.fail_rcpt, None
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.server.fail_data:
            answer, self.server.fail_data = self.server.fail_data, None
            return answer
        self.server.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self, *, accounts: dict[str, str] | None = None, auth_required: bool = False) -> None:
        self.port = free_port()
        self.received: list[tuple[str, list[str], bytes]] = []
        self.fail_rcpt: str | None = None
        self.fail_data: str | None = None
        self.accounts = accounts
        self.logins: list[str] = []  # the logins accepted
        self.refused_logins: list[str] = []
        auth: dict[str, Any] = {}
        if accounts is not None:
            auth = dict(authenticator=self._authenticate, auth_require_tls=False, auth_required=auth_required)
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, **auth)

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword) or self.accounts is None:
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode()
        if self.accounts.get(login) == auth_data.password.decode():
            self.logins.append(login)
            return AuthResult(success=True)
        self.refused_logins.append(login)
        return AuthResult(success=False, handled=False)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def letters(self) -> list[EmailMessage]:
        return [email.message_from_bytes(content, policy=email.policy.default)  # type: ignore[misc]
                for _, _, content in self.received]
