"""Delivery to people and systems: mail through SMTP, posts to Slack-compatible webhooks."""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING

from engine.errors import MarketopsError, TransientError
from engine.runs.fencing import deferred, sender_domain

if TYPE_CHECKING:
    from typing_extensions import Buffer


class DeliveryError(MarketopsError):
    """A delivery was refused for good (bad address, rejected message)."""


class SmtpLoginRefused(MarketopsError):
    """The SMTP server refused marketops' login: a settings mistake, not the recipient's, so
    the delivery is tried again once smtp.username / smtp.password are fixed."""


@dataclass(frozen=True)
class SmtpServer:
    """A resolved SMTP configuration (password already taken from the environment)."""

    host: str
    port: int
    sender: str
    starttls: bool = True
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0


@dataclass(frozen=True)
class Attachment:
    filename: str
    data: bytes
    maintype: str = "application"
    subtype: str = "octet-stream"


class _FencedSMTP(smtplib.SMTP):
    """SMTP that asks `before_data` once the recipients are accepted, just before DATA: the
    last moment a worker that lost its run can still stop without the message going out."""

    before_data: Callable[[], None] | None = None

    def data(self, msg: Buffer | str) -> tuple[int, bytes]:
        if self.before_data is not None:
            self.before_data()
        return super().data(msg)


def build_message(sender: str, to: list[str], subject: str, text: str,
                  html: str | None = None, attachments: tuple[Attachment, ...] = (),
                  inline_png: tuple[str, bytes] | None = None, *, message_id: str | None = None,
                  date: datetime | None = None) -> EmailMessage:
    """One message: plain text, an HTML alternative with an optional PNG shown inline
    (referenced as cid:<id>, Content-Disposition: inline), then the attachments. A re-send
    passes the same `message_id` and `date`, so receivers can tell it is the same message."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = format_datetime(date or datetime.now(UTC))
    message["Message-ID"] = message_id or make_msgid(domain=sender_domain(sender))
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
        if inline_png is not None:
            cid, data = inline_png
            html_part = message.get_body(preferencelist=("html",))
            if isinstance(html_part, EmailMessage):
                html_part.add_related(data, maintype="image", subtype="png", cid=f"<{cid}>",
                                      filename=f"{cid}.png", disposition="inline")
    for item in attachments:
        message.add_attachment(item.data, maintype=item.maintype, subtype=item.subtype,
                               filename=item.filename)
    return message


def send_mail(server: SmtpServer, to: list[str], subject: str, text: str,
              html: str | None = None, attachments: tuple[Attachment, ...] = (),
              inline_png: tuple[str, bytes] | None = None, *, message_id: str | None = None,
              date: datetime | None = None,
              before_data: Callable[[], None] | None = None) -> None:
    """Build and send one message (see build_message and send_message)."""
    send_message(server, build_message(server.sender, to, subject, text, html, attachments,
                                       inline_png, message_id=message_id, date=date),
                 before_data=before_data)


def send_message(server: SmtpServer, message: EmailMessage, *,
                 before_data: Callable[[], None] | None = None) -> None:
    """Send a built message; TransientError when the server cannot be reached or defers
    (retry later), DeliveryError when it refuses for good (5xx). `before_data` may raise to
    stop the send at the last moment (it propagates)."""
    try:
        with _FencedSMTP(server.host, server.port, timeout=server.timeout) as smtp:
            smtp.before_data = before_data
            if server.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if server.username and server.password:
                smtp.login(server.username, server.password)
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        refused = ", ".join(f"{r} ({c} {_reply(m)})" for r, (c, m) in exc.recipients.items())
        if deferred(codes):
            raise TransientError(f"recipients deferred: {refused}") from None
        raise DeliveryError(f"recipients refused: {refused}") from None
    except smtplib.SMTPAuthenticationError as exc:
        raise SmtpLoginRefused(f"the SMTP server refused the login of {server.username!r} "
                               f"({exc.smtp_code} {_reply(exc.smtp_error)}); check "
                               "smtp.username and smtp.password") from None
    except smtplib.SMTPResponseException as exc:
        if deferred([exc.smtp_code]):  # "try again later"
            raise TransientError(f"SMTP deferred the message ({exc.smtp_code} "
                                 f"{_reply(exc.smtp_error)})") from None
        raise DeliveryError(f"SMTP refused the message ({exc.smtp_code} "
                            f"{_reply(exc.smtp_error)})") from None
    except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError) as exc:
        raise TransientError(f"SMTP {server.host}:{server.port} unreachable: {exc}") from None
    except smtplib.SMTPException as exc:
        raise DeliveryError(f"SMTP refused the message: {exc}") from None


def _reply(text: bytes | str) -> str:
    """The server's reply text on one short line (it explains a refusal: "no such mailbox")."""
    line = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return " ".join(line.split())[:200]


def post_webhook(url: str, payload: dict[str, object], timeout: float = 15.0) -> None:
    """POST JSON; the URL is a secret, so errors never include it."""
    if urllib.parse.urlsplit(url).scheme.lower() not in ("http", "https"):
        raise DeliveryError("the webhook URL does not start with https://; fix the environment "
                            "variable it is read from")
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        if exc.code >= 500 or exc.code == 429:
            raise TransientError(f"webhook answered {exc.code}") from None
        raise DeliveryError(f"webhook refused the post ({exc.code})") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        # strerror ("Connection refused") never holds the URL, which is a secret.
        why = reason.strerror if isinstance(reason, OSError) and reason.strerror else None
        raise TransientError(f"webhook unreachable: {why or type(reason).__name__}") from None
    except ValueError as exc:  # http.client.InvalidURL and kin: the message quotes the URL
        raise DeliveryError(f"the webhook URL is malformed ({type(exc).__name__}); fix the "
                            "environment variable it is read from") from None
