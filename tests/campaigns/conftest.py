"""Campaign fixtures: a real SMTP server on 127.0.0.1 (aiosmtpd), a clock the test moves,
templates, contacts and due sends.

`smtp_server` records every message with its envelope and headers, and can be told to fail:
`refuse_next(550, "no such user")` answers the next RCPT with that code, `reject_data_next(451, …)`
answers the next DATA with it, `hang_data_next(seconds)` keeps the next DATA answer back for
that long (the client times out after the body went out: an ambiguous failure), and
`drop_next()` closes the connection before the next RCPT answer. `use_smtp` points Django's
email backend at it.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from aiosmtpd.controller import Controller

from common import clock

START = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    session: int  # which connection brought it: one per batch

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)

    def header(self, name: str) -> str:
        return str(self.message[name] or "")

    def part(self, content_type: str) -> str:
        for part in self.message.walk():
            if part.get_content_type() == content_type:
                return part.get_content()
        return ""


@dataclass
class Handler:
    messages: list[Received] = field(default_factory=list)
    sessions: int = 0
    rcpt_answers: list[str] = field(default_factory=list)
    data_answers: list[str] = field(default_factory=list)
    data_delays: list[float] = field(default_factory=list)
    drops: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802 - aiosmtpd's hook names
        session.host_name = hostname
        with self.lock:
            self.sessions += 1
            session.number = self.sessions
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        with self.lock:
            if self.drops:
                self.drops -= 1
                server.transport.close()
                return "421 closing"
            answer = self.rcpt_answers.pop(0) if self.rcpt_answers else None
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        with self.lock:
            delay = self.data_delays.pop(0) if self.data_delays else 0.0
            answer = self.data_answers.pop(0) if self.data_answers else None
        if delay:
            # Keep the answer back: the message was received, the client does not hear so.
            with self.lock:
                self.messages.append(
                    Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content, session.number)
                )
            await asyncio.sleep(delay)
            return "250 OK (too late)"
        if answer:
            return answer
        with self.lock:
            self.messages.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content, session.number)
            )
            count = len(self.messages)
        return f"250 2.0.0 Ok: queued as TEST{count}"


class SMTPServer:
    def __init__(self) -> None:
        self.handler = Handler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def start(self) -> SMTPServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.messages)

    @property
    def sessions(self) -> int:
        return self.handler.sessions

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages if address in m.rcpt_tos]

    def refuse_next(self, code: int, text: str = "refused") -> None:
        self.handler.rcpt_answers.append(f"{code} {text}")

    def reject_data_next(self, code: int, text: str = "rejected") -> None:
        self.handler.data_answers.append(f"{code} {text}")

    def hang_data_next(self, seconds: float) -> None:
        self.handler.data_delays.append(seconds)

    def drop_next(self) -> None:
        self.handler.drops += 1

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server():
    server = SMTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def use_smtp(settings, smtp_server):
    """Django's SMTP backend pointed at the local server, with a short timeout."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp_server.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 2
    return smtp_server


class Clock:
    """common.clock.now() pinned at START; `advance` moves it (and every thread's) forward."""

    def __init__(self, traveller) -> None:
        self.traveller = traveller

    def now(self) -> datetime:
        return clock.now()

    def advance(self, seconds: float) -> datetime:
        self.traveller.shift(timedelta(seconds=seconds))
        return clock.now()

    def move_to(self, when: datetime) -> datetime:
        self.traveller.move_to(when)
        return clock.now()


@pytest.fixture
def frozen():
    with time_machine.travel(START, tick=False) as traveller:
        yield Clock(traveller)


@pytest.fixture
def no_caller_checks():
    """The engine alone: the due-time checks loops and surveys register are set aside."""
    from campaigns.email import rules

    saved = {purpose: list(checks) for purpose, checks in rules._checks.items()}
    rules._checks.clear()
    yield
    rules._checks.clear()
    rules._checks.update(saved)
