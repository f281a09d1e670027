"""Email writes: schedule, cancel, retry, test sends, templates; and the preview.

Loops and surveys call `email_send_schedule` (or `email_sends_schedule_many` for a whole step)
and never send themselves. Scheduling checks nothing about the person: every rule is checked
when the send is due (campaigns.email.rules), so a person who unsubscribes between the two
gets nothing.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from campaigns.email import rendering
from campaigns.email.models import (
    STAFF_PURPOSES,
    EmailSend,
    EmailTemplate,
    LatePolicy,
    Purpose,
    SendStatus,
)
from campaigns.email.rules import register_send_check, unregister_send_check
from campaigns.email.unsubscribe import unsubscribe_token, unsubscribe_url
from common import clock
from common.bulk import bulk_insert
from common.workqueue import kick_on_commit
from common.workqueue.models import Attempt, AttemptOutcome
from common.workqueue.services import Changed, items_retry_now
from contacts.models import Contact

__all__ = [
    "email_preview",
    "email_send_schedule",
    "email_send_test",
    "email_sends_cancel",
    "email_sends_retry",
    "email_sends_schedule_many",
    "email_template_save",
    "register_send_check",
    "unregister_send_check",
]

WORK_TYPE = "email_send"
TEMPLATE_FIELDS = ("name", "subject", "html", "text", "transactional", "logo_url")


# --- scheduling ---------------------------------------------------------------------------------
def event_context(event: Any = None, extra_context: dict | None = None) -> dict:
    """The `event` a template sees: {"name", "properties", "timestamp"} from a dict or a
    ContactEvent-like object, plus the caller's extra keys. JSON-ready (timestamp as ISO text)."""
    context: dict[str, Any] = {}
    if event is not None:
        get = event.get if isinstance(event, dict) else lambda key, default=None: getattr(event, key, default)
        context = {"name": get("name", "") or "", "properties": dict(get("properties", None) or {})}
        stamp = get("timestamp", None)
        if stamp is not None:
            context["timestamp"] = stamp.isoformat() if isinstance(stamp, datetime) else str(stamp)
    if extra_context:
        context.update(extra_context)
    return context


def _late_minutes(late_after: timedelta | int | None) -> int | None:
    if late_after is None:
        return None
    if isinstance(late_after, timedelta):
        return max(int(late_after.total_seconds() // 60), 0)
    return max(int(late_after), 0)


def _new_send(
    *,
    contact: Contact | None,
    template: EmailTemplate,
    purpose: str,
    due_at: datetime,
    key: str,
    event: Any = None,
    extra_context: dict | None = None,
    late_policy: str = LatePolicy.SEND,
    late_after: timedelta | int | None = None,
    origin: str = "",
    to: str = "",
    reply_to: str = "",
) -> EmailSend:
    if purpose not in Purpose.values:
        raise ValueError(f"purpose must be one of {', '.join(Purpose.values)}, not {purpose!r}")
    if late_policy not in LatePolicy.values:
        raise ValueError(f"late_policy must be one of {', '.join(LatePolicy.values)}, not {late_policy!r}")
    if not key or len(key) > 255:
        raise ValueError("key must be 1 to 255 characters")
    if contact is None and purpose not in STAFF_PURPOSES:
        raise ValueError(f"a {purpose} email needs a contact")
    address = (to or (contact.email if contact is not None else "") or "").strip().lower()
    return EmailSend(
        contact=contact,
        to=address[:320],
        template=template,
        purpose=purpose,
        status=SendStatus.SCHEDULED,
        due_at=due_at,
        next_attempt_at=due_at,
        key=key,
        context=event_context(event, extra_context),
        late_policy=late_policy,
        late_after_minutes=_late_minutes(late_after),
        origin=origin[:200],
        reply_to=reply_to[:320],
        transactional=template.transactional,
        created_at=clock.now(),
    )


def email_send_schedule(
    *,
    contact: Contact | None,
    template: EmailTemplate,
    purpose: str,
    due_at: datetime,
    key: str,
    event: Any = None,
    extra_context: dict | None = None,
    late_policy: str = LatePolicy.SEND,
    late_after: timedelta | int | None = None,
    origin: str = "",
    to: str = "",
    reply_to: str = "",
) -> EmailSend:
    """One send per `key`, ever: a second call with the same key returns the first row unchanged.

    `event` is a dict or a ContactEvent (name, properties, timestamp); `extra_context` adds
    keys to it. `late_after` (a timedelta or minutes) and `late_policy` ("send" or "skip") say
    what happens to a send found overdue by more than that after an outage. `to` is for staff
    mail (purpose "notification" or "test", no contact); `reply_to` sets Reply-To.
    """
    existing = EmailSend.objects.filter(key=key).first()
    if existing is not None:
        return existing
    send = _new_send(
        contact=contact,
        template=template,
        purpose=purpose,
        due_at=due_at,
        key=key,
        event=event,
        extra_context=extra_context,
        late_policy=late_policy,
        late_after=late_after,
        origin=origin,
        to=to,
        reply_to=reply_to,
    )
    try:
        with transaction.atomic():
            send.save(force_insert=True)
    except IntegrityError:
        # Scheduled by someone else meanwhile: theirs stands.
        return EmailSend.objects.get(key=key)
    kick_on_commit(WORK_TYPE)
    return send


def email_sends_schedule_many(*, sends: Iterable[dict]) -> int:
    """Schedule many sends at once (a loop step for a whole audience); each dict holds
    email_send_schedule's arguments. Keys already scheduled are left as they are. Returns how
    many were new."""
    rows = [_new_send(**spec) for spec in sends]
    created = 0
    for start in range(0, len(rows), 2000):
        chunk = rows[start : start + 2000]
        taken = set(EmailSend.objects.filter(key__in=[row.key for row in chunk]).values_list("key", flat=True))
        fresh = list({row.key: row for row in chunk if row.key not in taken}.values())
        EmailSend.objects.bulk_create(fresh, ignore_conflicts=True, batch_size=1000)
        created += len(fresh)
    if created:
        kick_on_commit(WORK_TYPE)
    return created


def email_sends_cancel(
    *, keys: Iterable[str] | None = None, queryset: QuerySet[EmailSend] | None = None, reason: str
) -> int:
    """Scheduled sends become skipped with `reason`; sends already done, or being sent by a
    worker right now, are left alone (the caller's own due-time check covers those). Returns
    how many were cancelled."""
    if keys is None and queryset is None:
        raise ValueError("give keys or a queryset")
    rows = queryset if queryset is not None else EmailSend.objects.all()
    if keys is not None:
        rows = rows.filter(key__in=list(keys))
    now = clock.now()
    running = Q(claimed_by__gt="") & Q(next_attempt_at__gt=now)
    return (
        EmailSend.objects.filter(pk__in=rows.values("pk"), status=SendStatus.SCHEDULED)
        .exclude(running)
        .update(
            status=SendStatus.SKIPPED,
            reason=reason[:500],
            next_attempt_at=None,
            finished_at=now,
            claimed_by="",
        )
    )


def retryable() -> Q:
    """Sends staff may send again: failed ones (ambiguous included) and template errors."""
    return Q(status=SendStatus.FAILED) | Q(status=SendStatus.SKIPPED, reason__startswith="template error")


def email_sends_retry(*, pks: Iterable[int]) -> tuple[Changed, int]:
    """Send failed sends again now (one more attempt each). Returns the queue's count of what
    changed, and how many were not failed and were left alone."""
    pks = list(pks)
    eligible = list(EmailSend.objects.filter(retryable(), pk__in=pks).values_list("pk", flat=True))
    result = items_retry_now(model=EmailSend, pks=eligible)
    if result.changed:
        kick_on_commit(WORK_TYPE)
    return result, len(set(pks)) - len(eligible)


# --- templates ----------------------------------------------------------------------------------
@transaction.atomic
def email_template_save(*, template: EmailTemplate | None = None, **fields: Any) -> EmailTemplate:
    """Create or change a template; a part that does not compile is refused with its line
    (ValidationError naming the field)."""
    unknown = set(fields) - set(TEMPLATE_FIELDS)
    if unknown:
        raise TypeError(f"email_template_save() got unknown fields: {', '.join(sorted(unknown))}")
    template = template or EmailTemplate()
    for name, value in fields.items():
        setattr(template, name, value)
    errors = rendering.template_errors(subject=template.subject, html=template.html, text=template.text)
    if errors:
        raise ValidationError(errors)
    now = clock.now()
    if template.pk is None:
        template.created_at = now
    template.updated_at = now
    template.save()
    return template


def email_preview(*, template: EmailTemplate, contact: Contact | None, event: Any = None) -> dict[str, str]:
    """The template rendered for `contact`: {"subject", "html", "text"}. Its unsubscribe link
    is a sample that unsubscribes nobody. Raises rendering.TemplateError."""
    link = "" if template.transactional else unsubscribe_url(unsubscribe_token(contact_id=0, send_id=0))
    rendered = rendering.render(
        rendering.compiled(template),
        contact=rendering.contact_data(contact),
        event=rendering.event_data(event_context(event) if event is not None else sample_event()),
        unsubscribe_url=link,
        logo_url=template.logo_url,
    )
    return {"subject": rendered.subject, "html": rendered.html, "text": rendered.text}


def sample_event() -> dict:
    return {"name": "Sample event", "properties": {}, "timestamp": clock.now().isoformat()}


def email_send_test(
    *, template: EmailTemplate, contact: Contact | None, to: str, actor: str, event: Any = None
) -> EmailSend:
    """Render the template for `contact` and send it to a staff address now, in the foreground.

    A test skips the person's rules, the frequency cap and the rate limit, and stays out of
    the stats (purpose "test"); its unsubscribe link changes nothing. It is logged like any
    send. Raises rendering.TemplateError (nothing is sent or kept then).
    """
    from campaigns.email.sending import build_message, transmit

    now = clock.now()
    send = _new_send(
        contact=contact,
        template=template,
        purpose=Purpose.TEST,
        due_at=now,
        key=f"test:{now:%Y%m%d%H%M%S}:{secrets.token_hex(6)}",
        event=event if event is not None else sample_event(),
        origin=f"test by {actor}",
        to=to,
    )
    send.next_attempt_at, send.attempts, send.claimed_at = None, 1, now
    with transaction.atomic():
        send.save(force_insert=True)
        message = build_message(send, template, contact)  # a template error keeps nothing
        send.save(update_fields=["message_id", "subject"])
    started = time.monotonic()
    outcome = transmit([(send, message)])[send.pk]
    if outcome.kind != "ok" and send.status == SendStatus.SCHEDULED:
        send.status, send.reason = SendStatus.FAILED, outcome.error[:500]
    send.finished_at, send.last_error = clock.now(), ("" if outcome.kind == "ok" else outcome.error[:2000])
    send.save()
    bulk_insert(
        Attempt,
        [
            Attempt(
                content_type=ContentType.objects.get_for_model(EmailSend),
                object_id=send.pk,
                number=1,
                started_at=now,
                duration_ms=round((time.monotonic() - started) * 1000),
                outcome=AttemptOutcome.OK if outcome.kind == "ok" else AttemptOutcome.FAILED,
                status_code=outcome.status_code,
                response=outcome.response[:4096],
                error=outcome.error[:2000],
                worker=actor[:100],
            )
        ],
    )
    return send
