"""A real SMTP server for tests: aiosmtpd on 127.0.0.1 and a free port, keeping every message.

`server.messages` holds each accepted message parsed (email.message.EmailMessage) with its
envelope; `server.answers` lets a test make the server refuse recipients (`{address: "550 ..."}`);
`server.handler.on_data` is called with each message before the server answers 250.

Tests take it as the `smtp` fixture (tests/conftest.py: one server for the test module, emptied
before each test). The CRM in the test's process is pointed at it by the app config
(`settings()`); a worker or live server in another process reads the settings stored in the
database, which `save_settings()` writes.
"""
from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: object


@dataclass
class Handler:
    messages: list[Received] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)  # recipient -> answer given at RCPT
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_data: object = None  # called with the Received before the server answers 250

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        answer = self.answers.get(address.lower())
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        received = Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content,
                            BytesParser(policy=policy.default).parsebytes(envelope.content))
        with self.lock:
            self.messages.append(received)
        if self.on_data is not None:
            self.on_data(received)
        return "250 2.0.0 Message accepted for delivery"


class SMTPServer:
    def __init__(self):
        self.handler = Handler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    @property
    def answers(self) -> dict[str, str]:
        return self.handler.answers

    def settings(self) -> dict:
        """The app config that points the CRM at this server."""
        return {"EMAIL_SMTP_HOST": "127.0.0.1", "EMAIL_SMTP_PORT": self.port, "EMAIL_FROM_ADDRESS": "hello@teahouse.example",
                "EMAIL_FROM_NAME": "Tea House", "PUBLIC_URL": "http://localhost", "SHOP_NAME": "Tea House"}

    def settings_form(self, **changes: str) -> dict[str, str]:
        """Settings → Email as its form is filled in, pointing at this server (no throttle to
        speak of), with `changes` (e.g. public_url, per_minute)."""
        return {"smtp_host": "127.0.0.1", "smtp_port": str(self.port), "smtp_security": "none",
                "from_name": "Tea House", "from_address": "hello@teahouse.example",
                "public_url": "http://localhost", "per_minute": "10000", **changes}

    def save_settings(self, **changes: str) -> None:
        """Store `settings_form(**changes)` as the shop's email settings and commit: a worker
        subprocess or a live server reads them from the database, not from the test's app config."""
        from crm.extensions import db
        from crm.services.email import settings as email_settings

        email_settings.save(self.settings_form(**changes), None)
        db.session.commit()
