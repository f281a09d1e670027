from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from common.fields import JSONField
from integrations.kinds.base import Kind, get_kind, kind_choices


class Integration(models.Model):
    kind = models.CharField(
        max_length=32,
        choices=kind_choices,
        help_text="Which partner behaviour this integration applies. 'segment' applies them all.",
    )
    name = models.CharField(max_length=200, help_text="A name staff recognise, e.g. the Segment source.")
    enabled = models.BooleanField(
        default=True,
        help_text="Disabled integrations answer 401 to inbound calls and send nothing out.",
    )
    daily_cap = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Inbound requests accepted per UTC day; past it callers get 429 with "
        "Retry-After. Empty means no cap.",
    )
    shared_secret = models.CharField(
        max_length=200,
        blank=True,
        help_text="When set, every inbound request must carry a valid X-Signature "
        "(HMAC-SHA1 hex digest of the body with this secret), as Segment Webhooks sign.",
    )
    settings = JSONField(
        default=dict,
        blank=True,
        help_text="The kind's own settings; each is explained on the change form.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    @property
    def kind_class(self) -> type[Kind]:
        return get_kind(self.kind)

    def behaviour(self) -> Kind:
        return self.kind_class(self)


class ApiKey(models.Model):
    """An inbound key `publickey.secretkey`: looked up by the public part, secret stored hashed."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="api_keys")
    public_id = models.CharField(max_length=32, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.public_id}.…"

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class DailyUsage(models.Model):
    """Inbound requests per integration per UTC day, for the daily cap and the admin chart."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="usage")
    day = models.DateField()
    requests = models.PositiveIntegerField(default=0)
    messages = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["integration", "day"], name="usage_unique_day")]
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"{self.day}: {self.requests} requests"


class InboxStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    PROCESSED = "processed", "Processed"
    SKIPPED = "skipped", "Skipped"
    WAITING = "waiting", "Waiting for identify"
    REFUSED = "refused", "Refused (partner rule)"
    FAILED = "failed", "Failed"


class InboxMessage(models.Model):
    """Every accepted Segment message, stored before we answer 200.

    `next_attempt_at` is the work queue: a row is due when it is set and in the past. Final
    rows have it cleared; a claimed row has it pushed out by the lease, so a worker that dies
    mid-chunk leaves rows that are claimed again once the lease runs out.
    """

    # Every index here is paid for on each insert and on both drain updates, so the inbox has
    # only those the drain and the admin use (its search is exact: no LIKE indexes). The
    # integration column leads the unique index, which serves its foreign key too.
    integration = models.ForeignKey(Integration, on_delete=models.PROTECT, related_name="inbox", db_index=False)
    message_id = models.CharField(max_length=255)
    type = models.CharField(max_length=16)
    user_id = models.CharField(max_length=255, blank=True)
    anonymous_id = models.CharField(max_length=255, blank=True)
    email = models.CharField(max_length=320, blank=True)
    event = models.CharField(max_length=255, blank=True)
    payload = JSONField()
    timestamp = models.DateTimeField(help_text="When it happened, corrected for client clock skew.")
    received_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=InboxStatus.choices, default=InboxStatus.PENDING)
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    attempts = models.PositiveSmallIntegerField(default=0)
    reason = models.TextField(blank=True, help_text="Why it was skipped, or the last error.")
    warnings = JSONField(default=list, blank=True)
    lane = models.PositiveSmallIntegerField(
        default=0, help_text="Drain lane, from the userId (or anonymousId): one worker applies a person's messages."
    )
    processed_at = models.DateTimeField(null=True, blank=True)
    contact = models.ForeignKey("contacts.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = "inbox message"
        constraints = [
            models.UniqueConstraint(fields=["integration", "message_id"], name="inbox_unique_message"),
        ]
        indexes = [
            models.Index(fields=["lane", "id"], condition=Q(next_attempt_at__isnull=False), name="inbox_due_lane"),
            models.Index(fields=["status", "-received_at"], name="inbox_status_received"),
            models.Index(fields=["integration", "-received_at"], name="inbox_integration_received"),
            models.Index(fields=["-received_at", "-id"], name="inbox_received"),
            # Staff search by messageId alone (the unique index leads with integration).
            models.Index(fields=["message_id"], name="inbox_message_id"),
            models.Index(fields=["user_id"], name="inbox_user_id"),
            models.Index(fields=["email"], name="inbox_email"),
            # The type filter, newest first: rare types (alias) are found without a long scan.
            models.Index(fields=["type", "-received_at"], name="inbox_type_received"),
            # Rows of anonymous visitors, found again when an identify names their anonymousId.
            models.Index(fields=["anonymous_id"], condition=Q(status="waiting"), name="inbox_waiting_anonymous"),
            # Aliases that arrived before either id was known wait under their userId too.
            models.Index(fields=["user_id"], condition=Q(status="waiting"), name="inbox_waiting_user"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.message_id}"


class RejectedMessage(models.Model):
    """A request or batch item we answered 4xx for, kept so staff can see what was refused."""

    integration = models.ForeignKey(
        Integration, null=True, blank=True, on_delete=models.CASCADE, related_name="rejections"
    )
    received_at = models.DateTimeField(default=timezone.now)
    path = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    code = models.CharField(max_length=32)
    message = models.TextField()
    index = models.PositiveIntegerField(null=True, blank=True, help_text="Position in the batch.")
    body = models.TextField(blank=True, help_text="The request or item, cut at 64 KB.")
    remote_addr = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["-received_at"], name="rejected_received"),
            models.Index(fields=["code", "-received_at"], name="rejected_code_received"),
        ]

    def __str__(self) -> str:
        return f"{self.status_code} {self.code}"


# The outbound side's and the capture script's tables live in their packages; imported here so
# Django finds them under the "integrations" app label.
from integrations.capture.models import CaptureWindow, Visitor  # noqa: E402, F401
from integrations.outbound.models import OutboxItem, SyncRun  # noqa: E402, F401
