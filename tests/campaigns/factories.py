"""Templates, contacts and sends for campaign tests."""

from __future__ import annotations

from datetime import datetime
from itertools import count

from campaigns.email.models import EmailSend, EmailTemplate
from campaigns.email.services import email_send_schedule, email_template_save
from common import clock
from contacts.models import Contact

_numbers = count(1)

HTML = """<style>p { color: #333333; } .cta { font-weight: bold; }</style>
<p>Hi {{ contact.first_name|default:"there" }},</p>
<p class="cta">Your favourite colour is {{ contact.properties.favoriteColor }}.</p>
<p>You did {{ event.name }} (order {{ event.properties.order_id }}).</p>"""


def make_template(*, name: str = "", html: str = HTML, subject: str = "Hello {{ contact.first_name }}", **fields):
    return email_template_save(
        name=name or f"template {next(_numbers)}",
        subject=subject,
        html=html,
        text=fields.pop("text", ""),
        transactional=fields.pop("transactional", False),
        logo_url=fields.pop("logo_url", ""),
    )


def make_contact(email: str = "", **fields) -> Contact:
    n = next(_numbers)
    now = clock.now()
    return Contact.objects.create(
        email=(email or f"person{n}@example.com").lower(),
        user_id=fields.pop("user_id", f"user-{n}"),
        first_name=fields.pop("first_name", "Ada"),
        properties=fields.pop("properties", {"favoriteColor": "green"}),
        created_at=now,
        updated_at=now,
        **fields,
    )


def schedule(
    contact: Contact | None,
    template: EmailTemplate,
    *,
    key: str = "",
    purpose: str = "loop",
    due_at: datetime | None = None,
    **kwargs,
) -> EmailSend:
    return email_send_schedule(
        contact=contact,
        template=template,
        purpose=purpose,
        due_at=due_at or clock.now(),
        key=key or f"test:{next(_numbers)}",
        event=kwargs.pop("event", {"name": "Order Completed", "properties": {"order_id": "A-1"}}),
        **kwargs,
    )


def fresh(send: EmailSend) -> EmailSend:
    return EmailSend.objects.get(pk=send.pk)
