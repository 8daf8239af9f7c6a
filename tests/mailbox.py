"""Real loopback servers for delivery tests: an SMTP server (aiosmtpd) and an HTTP sink."""

from __future__ import annotations

import email
import email.policy
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class _Collect:
    def __init__(self, refuse: set[str], defer_once: set[str],
                 on_mail: Callable[[int], None] | None) -> None:
        self.messages: list[tuple[list[str], Message]] = []
        self.refuse = refuse
        self.defer_once = set(defer_once)
        self.on_mail = on_mail
        self.mail_commands = 0

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          options: Any) -> str:
        self.mail_commands += 1
        if self.on_mail is not None:
            self.on_mail(self.mail_commands)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: Any) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        deferred = self.defer_once & set(envelope.rcpt_tos)
        if deferred:
            self.defer_once -= deferred
            return "451 4.3.0 try again later"
        self.messages.append((list(envelope.rcpt_tos),
                              email.message_from_bytes(envelope.content,
                                                     policy=email.policy.default)))
        return "250 OK"


@contextmanager
def smtp_server(port: int, refuse: set[str] | None = None, defer_once: set[str] | None = None,
                on_mail: Callable[[int], None] | None = None,
                login: tuple[str, str] | None = None
                ) -> Iterator[list[tuple[list[str], Message]]]:
    """An SMTP server on 127.0.0.1:port; yields the list of received messages. Addresses in
    `refuse` are rejected for good (550); a message to one in `defer_once` is deferred (451)
    the first time; `on_mail(n)` is called at the n-th MAIL FROM, before it is answered;
    `login` (user, password) is the one AUTH accepted (over plain loopback, no TLS)."""
    handler = _Collect(refuse or set(), defer_once or set(), on_mail)

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                     data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and login is not None and (
            data.login.decode(), data.password.decode()) == login
        return AuthResult(success=ok, handled=False)

    auth: dict[str, Any] = ({"authenticator": authenticate,
                             "auth_require_tls": False} if login else {})
    controller = Controller(handler, hostname="127.0.0.1", port=port, **auth)
    controller.start()
    try:
        yield handler.messages
    finally:
        controller.stop()


@contextmanager
def http_sink(port: int) -> Iterator[list[dict[str, Any]]]:
    """An HTTP server on 127.0.0.1:port recording every JSON body POSTed to it."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
