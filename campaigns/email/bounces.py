"""Bounces, complaints and ESP unsubscribes, from django-anymail's tracking webhooks.

ESPs post to `/anymail/<esp>/tracking/` (basic auth from ANYMAIL_WEBHOOK_SECRET); anymail
normalizes each event and sends its `tracking` signal, received here:

- a hard bounce (or an ESP refusing a known-bad address) suppresses the address as bounced at
  once: no more email of any kind, transactional included;
- soft bounces suppress it once EMAIL_SOFT_BOUNCE_LIMIT of them (3) arrive within
  EMAIL_SOFT_BOUNCE_DAYS (30);
- a complaint suppresses it as complained and unsubscribes the contact;
- an unsubscribe reported by the ESP unsubscribes the contact.

ESPs deliver webhooks at least once: an event whose (ESP, event_id) was seen is dropped.
Events without an id (anymail leaves it empty for some ESPs) are keyed by a hash of the
payload. The send is found by the id we gave the ESP (metadata), its provider id, the
Message-ID, or else the latest email sent to the address.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction

from campaigns.email.models import EmailEvent, EmailSend, SendStatus
from campaigns.email.signals import email_bounced, email_complained
from common import clock
from common.ids import parse_pk
from contacts.hashing import email_md5
from contacts.models import Contact, Suppression, SuppressionReason
from contacts.services import contact_unsubscribe, suppressions_add

log = logging.getLogger(__name__)

Kind = EmailEvent.Kind
SOFT_TYPES = {"softbounce", "transient", "dnserror", "blocked", "temporary", "deferred", "soft"}
# A stronger suppression replaces a weaker one for the same address (erased ones are never touched).
WEAKER = {
    SuppressionReason.BOUNCED: (SuppressionReason.UNSUBSCRIBED, SuppressionReason.UPLOADED),
    SuppressionReason.COMPLAINED: (SuppressionReason.UNSUBSCRIBED, SuppressionReason.UPLOADED),
}


def event_kind(event) -> str | None:
    """Which of our kinds an anymail tracking event is, or None for events we do not act on
    (delivered, opened, clicked, deferred: the ESP retries those itself)."""
    event_type, reason = event.event_type, event.reject_reason
    if event_type == "complained" or (event_type == "rejected" and reason == "spam"):
        return Kind.COMPLAINT
    if event_type == "unsubscribed" or (event_type == "rejected" and reason == "unsubscribed"):
        return Kind.UNSUBSCRIBE
    if event_type == "bounced":
        return Kind.SOFT_BOUNCE if _is_soft(event) else Kind.HARD_BOUNCE
    if event_type == "rejected" and reason in ("bounced", "invalid"):
        return Kind.HARD_BOUNCE
    return None


def _is_soft(event) -> bool:
    """A temporary failure: the ESP's own bounce type (Postmark "SoftBounce", SendGrid "blocked",
    Mailgun "temporary"), or an SMTP answer in the 4xx class."""
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    for key in ("Type", "type", "severity", "bounce_type", "bounceType"):
        value = str(raw.get(key, "")).replace(" ", "").replace("_", "").lower()
        if value in SOFT_TYPES:
            return True
    answer = (event.mta_response or str(raw.get("status", ""))).strip().lower().removeprefix("smtp;").strip()
    return answer[:1] == "4"


def _event_id(event) -> str:
    if event.event_id:
        return str(event.event_id)[:255]
    payload = json.dumps(event.esp_event, sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()


def _find_send(event, recipient: str) -> EmailSend | None:
    metadata = event.metadata or {}
    pk = parse_pk(str(metadata.get("email_send", "")))
    if pk is not None:
        found = EmailSend.objects.filter(pk=pk).first()
        if found is not None:
            return found
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    if event.message_id:
        found = EmailSend.objects.filter(provider_id=str(event.message_id)[:255]).first()
        if found is not None:
            return found
    for candidate in (event.message_id, raw.get("smtp-id"), raw.get("Message-ID")):
        if candidate:
            value = str(candidate).strip()
            bracketed = value if value.startswith("<") else f"<{value}>"
            found = EmailSend.objects.filter(message_id=bracketed).first()
            if found is not None:
                return found
    if recipient:
        since = clock.now() - timedelta(days=30)
        return (
            EmailSend.objects.filter(to=recipient, sent_at__gte=since)
            .exclude(status=SendStatus.SCHEDULED)
            .order_by("-sent_at")
            .first()
        )
    return None


def _suppress(email: str, reason: str, note: str) -> bool:
    """Suppress the address for `reason`, strengthening a weaker suppression of it."""
    created = suppressions_add(emails=[email], reason=reason, note=note)
    if not created:
        # The suppression row is keyed by the address: a bounce outranks an unsubscribe (which
        # stops marketing only), so the existing row takes the stronger reason.
        Suppression.objects.filter(email_md5=email_md5(email), reason__in=WEAKER[reason]).update(
            reason=reason, note=note[:255]
        )
    return True


@transaction.atomic
def email_event_record(*, event, esp: str) -> EmailEvent | None:
    """Act on one anymail tracking event; the recorded event, or None when it is not ours to
    act on or was seen before."""
    kind = event_kind(event)
    if kind is None:
        return None
    event_id = _event_id(event)
    if EmailEvent.objects.filter(esp=esp, event_id=event_id).exists():
        return None
    recipient = (event.recipient or "").strip().lower()
    send = _find_send(event, recipient)
    recipient = recipient or (send.to if send else "")
    contact = send.contact if send is not None and send.contact_id else None
    if contact is None and recipient:
        contact = Contact.objects.filter(email=recipient).first()
    record = EmailEvent(
        esp=esp[:40],
        event_id=event_id,
        kind=kind,
        event_type=event.event_type or "",
        recipient=recipient[:320],
        send=send,
        message_id=str(event.message_id or "")[:255],
        description=str(event.description or "")[:500],
        mta_response=str(event.mta_response or "")[:1000],
        occurred_at=event.timestamp,
        received_at=clock.now(),
    )
    try:
        with transaction.atomic():
            record.save(force_insert=True)
    except IntegrityError:
        return None  # the same event, delivered twice at once
    detail = record.mta_response or record.description or event.event_type
    if kind == Kind.HARD_BOUNCE:
        record.suppressed = bool(recipient) and _suppress(recipient, SuppressionReason.BOUNCED, f"{esp}: {detail}")
        _mark(send, SendStatus.BOUNCED, f"hard bounce: {detail}")
        email_bounced.send(sender=EmailSend, send=send, contact=contact, email=recipient, hard=True)
    elif kind == Kind.SOFT_BOUNCE:
        limit, days = settings.EMAIL_SOFT_BOUNCE_LIMIT, settings.EMAIL_SOFT_BOUNCE_DAYS
        recent = EmailEvent.objects.filter(
            recipient=recipient, kind=Kind.SOFT_BOUNCE, received_at__gte=clock.now() - timedelta(days=days)
        ).count()
        hard = bool(recipient) and limit > 0 and recent >= limit
        if hard:
            note = f"{esp}: {recent} soft bounces in {days} days (last: {detail})"
            record.suppressed = _suppress(recipient, SuppressionReason.BOUNCED, note)
        _mark(send, SendStatus.BOUNCED, f"soft bounce: {detail}")
        email_bounced.send(sender=EmailSend, send=send, contact=contact, email=recipient, hard=hard)
    elif kind == Kind.COMPLAINT:
        record.suppressed = bool(recipient) and _suppress(
            recipient, SuppressionReason.COMPLAINED, f"{esp}: marked as spam"
        )
        if contact is not None:
            contact_unsubscribe(contacts=[contact], reason=f"complained (marked as spam, {esp})")
        _mark(send, SendStatus.COMPLAINED, f"complaint: {detail}")
        email_complained.send(sender=EmailSend, send=send, contact=contact, email=recipient)
    elif kind == Kind.UNSUBSCRIBE:
        if contact is not None:
            contact_unsubscribe(contacts=[contact], reason=f"unsubscribed at the ESP ({esp})")
        elif recipient:
            suppressions_add(emails=[recipient], reason=SuppressionReason.UNSUBSCRIBED, note=f"{esp}: unsubscribed")
        record.suppressed = bool(recipient)
    if record.suppressed:
        record.save(update_fields=["suppressed"])
    return record


def _mark(send: EmailSend | None, status: str, reason: str) -> None:
    """The send's status follows what became of it, once it went out (a complaint outranks a bounce)."""
    if send is None or send.status not in (SendStatus.SENT, SendStatus.BOUNCED):
        return
    EmailSend.objects.filter(pk=send.pk).update(status=status, reason=reason[:500])
    send.status, send.reason = status, reason[:500]


def on_tracking(sender, event, esp_name, **kwargs) -> None:
    """anymail.signals.tracking receiver."""
    email_event_record(event=event, esp=esp_name)


def on_inbound(sender, event, esp_name, **kwargs) -> None:
    """anymail.signals.inbound receiver: an emailed unsubscribe (the List-Unsubscribe mailto)
    carries its token in the subject."""
    from campaigns.email.unsubscribe import mailto_unsubscribe

    message = getattr(event, "message", None)
    subject = (message.get("Subject", "") if message is not None else "") or ""
    if "unsubscribe" in subject.lower():
        mailto_unsubscribe(subject=subject)
