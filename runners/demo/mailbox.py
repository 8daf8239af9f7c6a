"""A local mailbox for the demo: an SMTP server on loopback that saves each mail as .eml, and
a webhook sink that appends each post to a JSON-lines file."""

from __future__ import annotations

import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class _SaveToFiles:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.count = len(list(directory.glob("*.eml")))  # after what is there, not over it

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        to = re.sub(r"[^A-Za-z0-9@._-]", "_", ",".join(envelope.rcpt_tos))[:80]
        (self.directory / f"{self.count:04d}-{to}.eml").write_bytes(envelope.content)
        return "250 OK"


class LocalMailbox:
    """Started and stopped around the demo."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.smtp_port = free_port()
        self.webhook_port = free_port()
        self._smtp = Controller(_SaveToFiles(directory), hostname="127.0.0.1",
                                port=self.smtp_port)
        sink = directory / "webhooks.jsonl"

        class Hook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with sink.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(json.loads(body)) + "\n")
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", self.webhook_port), Hook)

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.webhook_port}/hook"

    def __enter__(self) -> LocalMailbox:
        self._smtp.start()
        # shutdown() waits for serve_forever's next look (0.5 s by default): a run that
        # sent nothing would otherwise spend a quarter second on average leaving.
        threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._smtp.stop()
        self._http.shutdown()
        self._http.server_close()
