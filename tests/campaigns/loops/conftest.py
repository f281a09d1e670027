"""Loops fixtures: a clock the test moves, templates, loops, tracks through the real inbound
endpoint and drain, and a run of the due email queue (locmem backend: mail.outbox)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail

from campaigns.email.models import EmailSend, EmailTemplate
from campaigns.loops.models import Loop, LoopStep
from common import clock
from common.workqueue import run_due
from contacts.models import Contact, ListMembership, MailingList

START = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)


class Clock:
    """common.clock.now() pinned at START; `advance` moves it forward."""

    def __init__(self, traveller) -> None:
        self.traveller = traveller

    def now(self) -> datetime:
        return clock.now()

    def advance(self, **delta) -> datetime:
        self.traveller.shift(timedelta(**delta))
        return clock.now()

    def move_to(self, when: datetime) -> datetime:
        self.traveller.move_to(when)
        return clock.now()


@pytest.fixture
def frozen():
    with time_machine.travel(START, tick=False) as traveller:
        yield Clock(traveller)


@pytest.fixture
def template(db):
    def make(name: str = "Welcome", subject: str = "Hi {{ contact.first_name }}", html: str = "", **fields):
        return EmailTemplate.objects.create(
            name=name,
            subject=subject,
            html=html or "<p>Plan {{ event.properties.plan }} for {{ contact.email }}</p>",
            **fields,
        )

    return make


def make_loop(*, steps=(), trigger=("User Registered",), exits=(), enabled=True, **fields) -> Loop:
    """steps: (delay_minutes, template) pairs."""
    loop = Loop.objects.create(
        name=fields.pop("name", "Welcome series"),
        enabled=enabled,
        trigger_events=list(trigger),
        exit_events=list(exits),
        **fields,
    )
    for position, (minutes, tmpl) in enumerate(steps, start=1):
        value, unit = LoopStep.split_minutes(minutes)
        LoopStep.objects.create(loop=loop, position=position, delay_value=value, delay_unit=unit, template=tmpl)
    return loop


@pytest.fixture
def track(segment, drain):
    """Send a Segment track through /v1/track and drain it; returns the drain's result."""
    client, _integration = segment

    def send(event: str = "User Registered", *, user_id: str = "u1", timestamp: datetime | None = None, **body):
        payload = {"userId": user_id, "event": event, "properties": body.pop("properties", {}), **body}
        payload["timestamp"] = (timestamp or clock.now()).isoformat()
        payload.setdefault("messageId", f"{event}-{user_id}-{payload['timestamp']}")
        response = client.post("/v1/track", payload)
        assert response.status_code == 200, response.content
        return drain()

    return send


@pytest.fixture
def identify(segment, drain):
    client, _integration = segment

    def send(user_id: str = "u1", **traits):
        traits.setdefault("email", f"{user_id}@example.com")
        payload = {"userId": user_id, "traits": traits, "timestamp": clock.now().isoformat()}
        response = client.post("/v1/identify", payload)
        assert response.status_code == 200, response.content
        drain()
        return Contact.objects.get(user_id=user_id)

    return send


def run_sends():
    """Send what is due now (the email queue, then the loops' settling), as a worker would."""
    return run_due(types=["email_send", "loops"], max_seconds=30)


def sends(**filters) -> list[EmailSend]:
    return list(EmailSend.objects.filter(purpose="loop", **filters).order_by("due_at", "pk"))


def outbox() -> list:
    return list(mail.outbox)


def join_list(contact: Contact, list_id: str = "news", subscribed: bool = True) -> MailingList:
    mailing_list, _ = MailingList.objects.get_or_create(list_id=list_id, defaults={"name": list_id})
    ListMembership.objects.update_or_create(
        contact=contact, mailing_list=mailing_list, defaults={"subscribed": subscribed}
    )
    return mailing_list
