"""Email's tables: templates, sends (a work-queue row each), the rate windows and ESP events.

An EmailSend is one email to one person, created once per idempotency `key` by
`email_send_schedule` and sent by the "email_send" work type when due. Every rule (suppressed,
bounced, unsubscribed, the caller's checks, the frequency cap, the late rule) is checked when
it is due, not when it is scheduled, and each skip is recorded on the row with its reason.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from common import clock
from common.fields import JSONField
from common.workqueue.models import WorkItem, due_index


class EmailTemplate(models.Model):
    """Subject, HTML and text in Django template syntax, with `contact` and `event` in the context."""

    name = models.CharField(max_length=200, unique=True)
    subject = models.CharField(max_length=500, help_text="Template text: {{ contact.first_name }} works here too.")
    html = models.TextField(
        help_text="Django template syntax. {{ contact.email }}, {{ contact.properties.favoriteColor }} (names as "
        "sent), {{ event.properties.order_id }}, {{ unsubscribe_url }}, {{ logo_url }}. CSS in <style> is inlined."
    )
    text = models.TextField(blank=True, help_text="The plain-text part; left empty, it is made from the HTML.")
    transactional = models.BooleanField(
        default=False,
        help_text="Transactional mail (receipts, password resets) still goes to unsubscribed contacts, never to "
        "bounced or complained ones, has no unsubscribe link and no frequency cap.",
    )
    logo_url = models.URLField(max_length=500, blank=True, help_text="Shown at the top of the email ({{ logo_url }}).")
    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Purpose(models.TextChoices):
    LOOP = "loop", "loop"
    SURVEY = "survey", "survey"
    REMINDER = "reminder", "reminder"
    AUTORESPONDER = "autoresponder", "autoresponder"
    NOTIFICATION = "notification", "notification"
    TEST = "test", "test"


# Mail to staff addresses, not to a contact: no contact rules, no cap, out of the stats.
STAFF_PURPOSES = frozenset({Purpose.TEST, Purpose.NOTIFICATION})


class SendStatus(models.TextChoices):
    SCHEDULED = "scheduled", "scheduled"
    SENT = "sent", "sent"
    FAILED = "failed", "failed"
    SKIPPED = "skipped", "skipped"
    BOUNCED = "bounced", "bounced"
    COMPLAINED = "complained", "complained"


class LatePolicy(models.TextChoices):
    SEND = "send", "send late"
    SKIP = "skip", "skip"


class EmailSend(WorkItem):
    """One email to one person: scheduled once per key, sent at most once."""

    contact = models.ForeignKey(
        "contacts.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="email_sends", db_index=False
    )
    to = models.CharField(max_length=320, help_text="The address, as scheduled; the contact's current one when sent.")
    # emailsend_template leads with the template and serves the foreign key: no second index.
    template = models.ForeignKey(EmailTemplate, on_delete=models.PROTECT, related_name="sends", db_index=False)
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    status = models.CharField(max_length=12, choices=SendStatus.choices, default=SendStatus.SCHEDULED)
    reason = models.CharField(max_length=500, blank=True, help_text="Why it was skipped or failed, or sent late.")
    due_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    key = models.CharField(max_length=255, unique=True, help_text="The idempotency key: one send per key, ever.")
    context = JSONField(default=dict, blank=True, help_text="The `event` the template sees.")
    late_policy = models.CharField(max_length=8, choices=LatePolicy.choices, default=LatePolicy.SEND)
    late_after_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Past due_at by more than this, it is late (empty: never late)."
    )
    message_id = models.CharField(max_length=255, blank=True, help_text="The Message-ID header it was sent with.")
    provider_id = models.CharField(max_length=255, blank=True, help_text="The ESP's id for it (bounces name it).")
    origin = models.CharField(max_length=200, blank=True, help_text="Who scheduled it, for staff.")
    # Added beside the agreed fields:
    subject = models.CharField(max_length=998, blank=True, help_text="The subject as rendered when sent.")
    transactional = models.BooleanField(default=False, help_text="The template's flag when it was sent.")
    send_started_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set just before the message goes to the server. A row found with it set and still scheduled "
        "was lost mid-send: it may have been delivered, so it is failed as ambiguous, never resent by itself.",
    )
    rate_window = models.DateTimeField(
        null=True, blank=True, help_text="The rate-limit window it holds a place in (EMAIL_RATE_LIMIT)."
    )
    unsubscribed_at = models.DateTimeField(null=True, blank=True, help_text="When its unsubscribe link was used.")
    reply_to = models.CharField(max_length=320, blank=True, help_text="A Reply-To address, when the caller gave one.")
    created_at = models.DateTimeField(default=clock.now)

    class Meta(WorkItem.Meta):
        indexes = [
            due_index("campaigns_emailsend_due"),
            # The contact's sends (API filter, frequency cap: sent in the last day).
            models.Index(fields=["contact", "-sent_at"], name="emailsend_contact_sent"),
            # Every index is written three times per send (claim, mark, finish): only what the
            # admin, the API and the rules look up. A purpose filter walks the log by id instead.
            models.Index(fields=["status", "-id"], name="emailsend_status"),
            models.Index(fields=["template", "-id"], name="emailsend_template"),
            models.Index(fields=["to", "-id"], name="emailsend_to"),
            models.Index(fields=["provider_id"], name="emailsend_provider_id", condition=~Q(provider_id="")),
            models.Index(fields=["message_id"], name="emailsend_message_id", condition=~Q(message_id="")),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} email to {self.to or 'nobody'} ({self.status})"

    @property
    def marketing(self) -> bool:
        return not self.transactional and self.purpose not in STAFF_PURPOSES

    # --- the queue's hooks: the domain status follows the queue ------------------------------
    def work_failed(self, error: str) -> None:
        if self.status == SendStatus.SCHEDULED:
            self.status, self.reason = SendStatus.FAILED, error[:500]

    def work_cancelled(self) -> None:
        if self.status == SendStatus.SCHEDULED:
            self.status, self.reason = SendStatus.SKIPPED, "cancelled by staff"

    def work_retried(self) -> None:
        # Only failed sends (and template errors) are offered for retry; see services.email_sends_retry.
        self.status, self.reason, self.send_started_at, self.rate_window = SendStatus.SCHEDULED, "", None, None


class EmailRateWindow(models.Model):
    """How many sends each EMAIL_RATE_LIMIT window has given out, shared by every worker.

    The row whose `start` is the epoch is a lock: reservations take it FOR UPDATE first, so
    workers reserve one after another (a few milliseconds per batch of a hundred).
    """

    start = models.DateTimeField(unique=True)
    used = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M:%S}: {self.used}"


class EmailEvent(models.Model):
    """A bounce, complaint or unsubscribe reported by the ESP (django-anymail's tracking webhook)."""

    class Kind(models.TextChoices):
        HARD_BOUNCE = "hard_bounce", "hard bounce"
        SOFT_BOUNCE = "soft_bounce", "soft bounce"
        COMPLAINT = "complaint", "complaint"
        UNSUBSCRIBE = "unsubscribe", "unsubscribe"

    esp = models.CharField(max_length=40)
    event_id = models.CharField(max_length=255, help_text="The ESP's id for the event: a repeat is dropped.")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    event_type = models.CharField(max_length=40, help_text="Anymail's normalized event type.")
    recipient = models.CharField(max_length=320, blank=True)
    send = models.ForeignKey(EmailSend, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    message_id = models.CharField(max_length=255, blank=True)
    description = models.CharField(max_length=500, blank=True)
    mta_response = models.CharField(max_length=1000, blank=True)
    suppressed = models.BooleanField(default=False, help_text="Whether this event suppressed the address.")
    occurred_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["esp", "event_id"], name="emailevent_unique")]
        indexes = [
            models.Index(fields=["recipient", "kind", "-received_at"], name="emailevent_recipient"),
            models.Index(fields=["-received_at"], name="emailevent_received"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.recipient or 'unknown'}"
