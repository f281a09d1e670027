"""What an erasure (GDPR delete) and a merge mean for email sends and ESP events.

An erased person's sends keep their status and times for the stats, but lose the address,
the subject and the event data; scheduled ones are skipped. Their ESP events lose the address.
A merge moves the source contact's sends to the surviving contact, so its frequency cap and
history count them.
"""

from __future__ import annotations

from django.db.models import Q

from campaigns.email.models import EmailEvent, EmailSend, SendStatus
from common import clock

ERASED = "(erased)"


def sends_redact(*, user_ids: set[str], emails: set[str], contact_pks, **kwargs) -> int:
    """contacts.signals.contact_erased receiver: returns how many rows it redacted."""
    query = Q(pk__in=[])
    if contact_pks:
        query |= Q(contact_id__in=contact_pks)
    if emails:
        query |= Q(to__in=emails)
    now = clock.now()
    EmailSend.objects.filter(query, status=SendStatus.SCHEDULED).update(
        status=SendStatus.SKIPPED, reason="contact erased", next_attempt_at=None, finished_at=now
    )
    redacted = EmailSend.objects.filter(query).update(to=ERASED, subject="", context={}, reply_to="", last_error="")
    if emails:
        redacted += EmailEvent.objects.filter(recipient__in=emails).update(
            recipient=ERASED, description="", mta_response=""
        )
    return redacted


def sends_repoint(*, source_pk: int, target_pk: int, **kwargs) -> None:
    """contacts.signals.contacts_merged receiver."""
    EmailSend.objects.filter(contact_id=source_pk).update(contact_id=target_pk)
