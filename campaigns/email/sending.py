"""The "email_send" work type's batch handler: rules, render, rate limit, send, record.

One batch (up to 100 due sends, claimed by one worker) costs a few queries whatever its size:
the templates, the contacts, their suppressions, the frequency-cap counts, one UPDATE marking
the sends about to go, and the queue's bulk finish. Messages go over one connection from
Django's email backend (`EMAIL_URL`: SMTP, the console, or a django-anymail ESP backend),
one `send_messages` call per message, so each has its own answer.

Never twice: a send is marked (`send_started_at`, committed) just before its batch goes to the
server. A row found still scheduled with that mark was lost mid-send (its worker died, or the
finish could not be written): it may have been delivered, so it fails as ambiguous and only
staff send it again. An SMTP failure after the body went out (the answer to DATA timed out,
the connection dropped) is ambiguous too. Failures before that (refused connection, 4xx) are
retried with backoff; 5xx refusals fail at once.
"""

from __future__ import annotations

import logging
import secrets
import smtplib
import time
from collections.abc import Iterable
from datetime import datetime
from email.utils import parseaddr
from functools import lru_cache

import requests
from django.conf import settings
from django.core.mail import get_connection
from django.db import transaction

from campaigns.email import rate, rendering, rules
from campaigns.email.message import Email
from campaigns.email.models import EmailSend, EmailTemplate, Purpose, SendStatus
from campaigns.email.signals import email_sent
from campaigns.email.smtp import DJANGO_SMTP_BACKEND
from campaigns.email.unsubscribe import list_unsubscribe_headers, unsubscribe_token, unsubscribe_url
from common import clock
from common.workqueue import Outcome, WorkError
from contacts.models import Contact

log = logging.getLogger(__name__)

CONTACT_FIELDS = ("id", "email", "first_name", "last_name", "user_id", "properties", "subscribed")
LOST_MID_SEND = (
    "ambiguous: its worker stopped while sending it, so it may have been delivered; it is not resent "
    "automatically (retry it from the admin to send it again)"
)


# --- the batch handler ---------------------------------------------------------------------
def send_batch(items: list[EmailSend]) -> dict[int, Outcome]:
    now = clock.now()
    outcomes: dict[int, Outcome] = {}
    live = []
    for item in items:
        if item.status != SendStatus.SCHEDULED:
            # Never send a row twice, whatever brought it back to the queue.
            outcomes[item.pk] = Outcome.skipped(f"already {item.status}")
        elif item.send_started_at is not None:
            item.status, item.reason = SendStatus.FAILED, LOST_MID_SEND
            outcomes[item.pk] = Outcome.failure(WorkError(LOST_MID_SEND, permanent=True, ambiguous=True))
        else:
            live.append(item)
    if not live:
        return outcomes
    templates = EmailTemplate.objects.in_bulk({item.template_id for item in live})
    contacts = Contact.objects.only(*CONTACT_FIELDS).in_bulk({item.contact_id for item in live if item.contact_id})
    skips, notes = rules.decide(
        live, contacts=contacts, transactional={pk: t.transactional for pk, t in templates.items()}, now=now
    )
    going = []
    for item in live:
        if item.pk in skips:
            item.status, item.reason = SendStatus.SKIPPED, skips[item.pk]
            outcomes[item.pk] = Outcome.skipped(skips[item.pk])
        else:
            item.reason = notes.get(item.pk, "")
            going.append(item)
    going = _within_rate(going, outcomes, now)
    if going:
        _mark_started(going, now)
        outcomes.update(render_and_send(going, templates, contacts))
        for item in going:
            if item.status == SendStatus.SENT:
                email_sent.send(sender=EmailSend, send=item)
    return outcomes


def render_and_send(items: list[EmailSend], templates, contacts) -> dict[int, Outcome]:
    """Render each message and send it over one connection, one after the other.

    (Rendering in one thread while another waits on the server was measured slower: the sender
    waits for the interpreter lock after each of the four SMTP answers a message takes.)"""
    outcomes: dict[int, Outcome] = {}

    def rendered():
        for item in items:
            try:
                message = build_message(item, templates[item.template_id], contacts.get(item.contact_id))
            except rendering.TemplateError as error:
                # Not sent, and not worth retrying until staff fix the template (then "Retry").
                item.status, item.reason = SendStatus.SKIPPED, f"template error: {error}"[:500]
                item.send_started_at = None
                outcomes[item.pk] = Outcome.failure(WorkError(item.reason, permanent=True))
                continue
            yield item, message

    outcomes.update(transmit(rendered()))
    return outcomes


def _within_rate(items: list[EmailSend], outcomes: dict[int, Outcome], now: datetime) -> list[EmailSend]:
    """The sends that may go now; the others wait for the window they were given a place in."""
    limit = rate.current_limit()
    if limit is None or not items:
        return items
    current = rate.window_start(now, limit[1])
    held = [item for item in items if item.rate_window == current]
    asking = [item for item in items if item.rate_window != current]
    places = rate.rate_reserve(len(asking), now=now)
    going = list(held)
    for item, place in zip(asking, places, strict=True):
        if place is None or place <= now:
            going.append(item)
            continue
        item.rate_window = place
        error = (
            f"rate limited: EMAIL_RATE_LIMIT {settings.EMAIL_RATE_LIMIT} is used up in this window; "
            f"it goes in the window starting {place:%Y-%m-%d %H:%M:%S} UTC"
        )
        outcomes[item.pk] = Outcome.failure(WorkError(error, retry_after=(place - now).total_seconds()))
    for item in going:
        item.rate_window = None
    return going


def _mark_started(items: list[EmailSend], now: datetime) -> None:
    """Committed before anything goes out: a worker lost after this point leaves the mark."""
    for item in items:
        item.send_started_at = now
    with transaction.atomic():
        EmailSend.objects.filter(pk__in=[item.pk for item in items]).update(send_started_at=now)


# --- building a message ----------------------------------------------------------------------
def from_address() -> str:
    return settings.DEFAULT_FROM_EMAIL


def message_id_domain() -> str:
    return _domain_of(from_address())


@lru_cache(maxsize=8)
def _domain_of(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2] or "localhost"


def build_message(item: EmailSend, template: EmailTemplate, contact: Contact | None) -> Email:
    """The email for one send, rendered for its person; sets the send's subject and Message-ID.
    Raises rendering.TemplateError."""
    compiled = rendering.compiled(template)
    headers = {}
    link = ""
    if not template.transactional and item.purpose != Purpose.NOTIFICATION:
        # A test send shows the link and headers, but its token names nobody: using it changes nothing.
        token = unsubscribe_token(contact_id=0 if item.purpose == Purpose.TEST else item.contact_id, send_id=item.pk)
        link = unsubscribe_url(token)
        headers.update(list_unsubscribe_headers(token))
    rendered = rendering.render(
        compiled,
        contact=rendering.contact_data(contact),
        event=rendering.event_data(item.context),
        unsubscribe_url=link,
        logo_url=template.logo_url,
    )
    if not item.message_id:
        item.message_id = f"<sy.{item.pk}.{secrets.token_hex(6)}@{message_id_domain()}>"
    headers["Message-ID"] = item.message_id
    item.subject = rendered.subject[:998]
    message = Email(
        subject=rendered.subject,
        body=rendered.text,
        from_email=from_address(),
        to=[item.to],
        headers=headers,
        reply_to=[item.reply_to] if item.reply_to else None,
    )
    message.attach_alternative(rendered.html, "text/html")
    # ESPs (django-anymail) keep this and return it with bounces and complaints.
    message.metadata = {"email_send": str(item.pk)}
    return message


# --- sending over one connection -------------------------------------------------------------
def connection():
    """The configured backend; Django's SMTP backend becomes its subclass that knows how far
    a message got (campaigns.email.smtp)."""
    backend = settings.EMAIL_BACKEND
    if backend == DJANGO_SMTP_BACKEND:
        backend = "campaigns.email.smtp.EmailBackend"
    return get_connection(backend=backend, fail_silently=False)


def transmit(prepared: Iterable[tuple[EmailSend, Email]]) -> dict[int, Outcome]:
    """Send each message over one connection, reconnecting after a dropped one; an outcome each.
    Sets status, sent_at and provider_id on the sends that went."""
    outcomes: dict[int, Outcome] = {}
    backend = connection()
    opened: bool | str = False  # False: (re)connect before the next message; a str: why it could not
    try:
        for item, message in prepared:
            if opened is False:
                opened = _open(backend)
            if opened is not True:
                _not_sent(item)
                outcomes[item.pk] = _timed(Outcome.failure(WorkError(f"could not connect: {opened}")), clock.now(), 0)
                continue
            started_at, started = clock.now(), time.monotonic()
            try:
                backend.send_messages([message])
            except Exception as error:  # noqa: BLE001 - every failure is classified and recorded
                outcome, broken = classify(error, backend)
                if outcome.ambiguous:
                    item.status, item.reason = SendStatus.FAILED, outcome.error[:500]
                else:
                    _not_sent(item)
                outcomes[item.pk] = _timed(outcome, started_at, started)
                if broken:
                    backend.close()
                    opened = False
                continue
            item.status, item.sent_at = SendStatus.SENT, clock.now()
            status = getattr(message, "anymail_status", None)
            if status is not None and status.message_id:
                item.provider_id = str(status.message_id)[:255]
            reply = getattr(backend, "last_reply", "") or ""
            code = int(reply[:3]) if reply[:3].isdigit() else None
            outcomes[item.pk] = _timed(Outcome.ok(status_code=code, response=reply or "accepted"), started_at, started)
    finally:
        try:
            backend.close()
        except Exception:  # noqa: BLE001 - the messages are sent; a failed QUIT changes nothing
            log.warning("closing the email connection failed", exc_info=True)
    return outcomes


def _open(backend) -> bool | str:
    try:
        backend.open()
    except Exception as error:  # noqa: BLE001 - reported on every send of the batch
        return f"{type(error).__name__}: {error}"
    return True


def _not_sent(item: EmailSend) -> None:
    """The server did not take it: clear the mark so the retry may send it."""
    item.send_started_at = None


def _timed(outcome: Outcome, started_at: datetime, started: float) -> Outcome:
    from dataclasses import replace

    duration = round((time.monotonic() - started) * 1000) if started else 0
    return replace(outcome, started_at=started_at, duration_ms=duration)


AMBIGUOUS = (
    "ambiguous: {what} after the message was sent, so it may have been delivered; it is not resent "
    "automatically (retry it from the admin to send it again)"
)


def classify(error: Exception, backend) -> tuple[Outcome, bool]:
    """What a failed send means: (its outcome, whether the connection must be reopened)."""
    text = f"{type(error).__name__}: {error}"[:500]
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        code, answer = next(iter(error.recipients.values()), (None, b""))
        answer = answer.decode(errors="replace") if isinstance(answer, bytes) else str(answer)
        reply = f"{code} {answer}"
        return _coded(code, f"refused: {reply}", reply), False
    if isinstance(error, smtplib.SMTPSenderRefused):
        reply = f"{error.smtp_code} {error.smtp_error.decode(errors='replace')}"
        # Our own address was refused: not this recipient's fault, so never a permanent failure.
        return Outcome.failure(
            WorkError(f"sender refused: {reply}", status_code=error.smtp_code, response=reply)
        ), False
    if isinstance(error, smtplib.SMTPDataError):
        reply = f"{error.smtp_code} {error.smtp_error.decode(errors='replace')}"
        return _coded(error.smtp_code, f"rejected: {reply}", reply), False
    if isinstance(error, smtplib.SMTPServerDisconnected | OSError) and not isinstance(
        error, smtplib.SMTPResponseException
    ):
        if getattr(backend, "body_sent", False):
            what = "the server's answer did not come" if "timed out" in str(error) else "the connection dropped"
            message = AMBIGUOUS.format(what=f"{what} ({text})")
            return Outcome.failure(WorkError(message, permanent=True, ambiguous=True)), True
        return Outcome.failure(WorkError(f"connection failed before the message was sent: {text}")), True
    if isinstance(error, smtplib.SMTPResponseException):
        reply = f"{error.smtp_code} {error.smtp_error.decode(errors='replace')}"
        return _coded(error.smtp_code, reply, reply), True
    return _anymail(error, text)


def _coded(code: int | None, message: str, reply: str) -> Outcome:
    permanent = code is not None and 500 <= code < 600
    return Outcome.failure(WorkError(message[:500], permanent=permanent, status_code=code, response=reply))


def _anymail(error: Exception, text: str) -> tuple[Outcome, bool]:
    try:
        from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
    except ImportError:  # pragma: no cover - anymail is a requirement
        return Outcome.failure(WorkError(text)), True
    if isinstance(error, AnymailRecipientsRefused):
        return Outcome.failure(WorkError(f"refused by the ESP: {text}", permanent=True)), False
    if isinstance(error, requests.ReadTimeout):
        message = AMBIGUOUS.format(what=f"the ESP's answer did not come ({text})")
        return Outcome.failure(WorkError(message, permanent=True, ambiguous=True)), True
    if isinstance(error, AnymailAPIError):
        code = error.status_code
        permanent = code is not None and 400 <= code < 500 and code not in (408, 429)
        retry_after = None
        response = getattr(error, "response", None)
        if code == 429 and response is not None:
            header = response.headers.get("Retry-After", "")
            retry_after = float(header) if header.isdigit() else None
        return Outcome.failure(WorkError(text, permanent=permanent, status_code=code, retry_after=retry_after)), False
    return Outcome.failure(WorkError(text)), True
