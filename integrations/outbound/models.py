"""The outbound side's tables: one row per message to Segment, and the history of sync runs.

`OutboxItem` is a work-queue row (common.workqueue.WorkItem): due at a time, claimed by one
worker, retried with backoff, never sent by two workers at once. Its `message_id` is stable and
unique per integration, so a retry (or a second enqueue of the same contact or event) can never
make a second message in Segment, which dedupes by messageId.

`SyncRun` is one worker's pass over one integration's due items (or a backfill, or a test send):
what it sent, failed, skipped and left queued, and each request it made to the endpoint.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from common import clock
from common.fields import JSONField
from common.workqueue.models import WorkItem, due_index


class OutboxStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    SENT = "sent", "sent"
    FAILED = "failed", "failed"
    SKIPPED = "skipped", "skipped"
    CANCELLED = "cancelled", "cancelled"


class OutboxSource(models.TextChoices):
    GROW = "grow", "Grow (contact)"
    RECLAIM = "reclaim", "Reclaim (abandonment)"
    EVENT = "event", "Other apps' event"
    TEST = "test", "Test event"


class FailureType(models.TextChoices):
    REJECTED = "rejected", "rejected by Segment (4xx)"
    DEAD_LETTER = "dead_letter", "retries ran out (dead-lettered)"
    TOO_LARGE = "too_large", "over 32 KB"
    NOT_CONFIGURED = "not_configured", "integration not configured"


class SyncTrigger(models.TextChoices):
    WORKER = "worker", "worker"
    BACKFILL = "backfill", "sync_segment"
    TEST = "test", "test event"


class SyncRun(models.Model):
    integration = models.ForeignKey(
        "integrations.Integration", on_delete=models.PROTECT, related_name="sync_runs", db_index=False
    )
    trigger = models.CharField(max_length=10, choices=SyncTrigger.choices, default=SyncTrigger.WORKER)
    started_at = models.DateTimeField(default=clock.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    sent = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0, help_text="Failed for good: rejected, or out of retries.")
    skipped = models.PositiveIntegerField(
        default=0, help_text="Suppressed, filtered, switched off, or known elsewhere."
    )
    queued = models.PositiveIntegerField(
        default=0, help_text="Left to try again (a worker run), or queued (a backfill)."
    )
    requests = JSONField(
        default=list, blank=True, help_text="Each request to the endpoint: when, the answer, how many messages."
    )
    worker = models.CharField(max_length=100, blank=True)

    class Meta:
        indexes = [models.Index(fields=["integration", "-started_at"], name="syncrun_integration_started")]

    def __str__(self) -> str:
        return f"sync run {self.pk} ({self.trigger})"


class OutboxItem(WorkItem):
    """One message to Segment: an identify, a group or a track, for one person."""

    integration = models.ForeignKey(
        "integrations.Integration", on_delete=models.PROTECT, related_name="outbox", db_index=False
    )
    source = models.CharField(max_length=10, choices=OutboxSource.choices)
    type = models.CharField(max_length=10, help_text="identify, group or track")
    event = models.CharField(max_length=255, blank=True)
    contact = models.ForeignKey(
        "contacts.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    email = models.CharField(max_length=320, blank=True)
    # A person's messages go out in order (identify before tracks): items of one key are sent
    # in id order, a later one never before an earlier one that is still queued.
    person_key = models.CharField(max_length=64)
    message_id = models.CharField(max_length=64)
    payload = JSONField(default=dict, blank=True, help_text="The Segment message as sent (or to be sent).")
    event_at = models.DateTimeField(help_text="When what it reports happened.")
    due_at = models.DateTimeField(help_text="When it first came due; the retry window counts from here.")
    status = models.CharField(max_length=10, choices=OutboxStatus.choices, default=OutboxStatus.QUEUED)
    failure_type = models.CharField(max_length=16, choices=FailureType.choices, blank=True)
    error = models.TextField(blank=True, help_text="Why it was skipped, or why it failed.")
    response = models.TextField(blank=True, help_text="Segment's answer to the last attempt that failed.")
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    run = models.ForeignKey(SyncRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="items")

    class Meta(WorkItem.Meta):
        verbose_name = "outbound message"
        constraints = [
            models.UniqueConstraint(fields=["integration", "message_id"], name="outbox_unique_message"),
        ]
        indexes = [
            due_index("integrations_outboxitem_due"),
            models.Index(fields=["integration", "status", "-id"], name="outbox_integration_status"),
            # Earlier queued items of the same people, looked up by every batch.
            models.Index(
                fields=["integration", "person_key", "id"],
                condition=Q(status="queued"),
                name="outbox_queued_person",
            ),
            # A contact's messages (erasure, merges, the admin's search by email).
            models.Index(fields=["contact", "-id"], name="outbox_contact"),
            # A run's failures and skips (its sent messages are found newest first by
            # outbox_integration_status): no entry, so no cost, for the messages that go.
            models.Index(fields=["run"], condition=Q(status__in=["failed", "skipped"]), name="outbox_run_problems"),
        ]

    def __str__(self) -> str:
        what = self.event or self.type
        return f"{what} for {self.email or self.person_key} ({self.status})"

    # --- the queue's hooks: the domain status follows the queue ------------------------------
    def work_failed(self, error: str) -> None:
        if self.status == OutboxStatus.QUEUED:
            self.status = OutboxStatus.FAILED
            self.error = self.error or error[:2000]
            self.failure_type = self.failure_type or FailureType.DEAD_LETTER

    def work_cancelled(self) -> None:
        if self.status == OutboxStatus.QUEUED:
            self.status, self.error = OutboxStatus.CANCELLED, "cancelled by staff"

    def work_retried(self) -> None:
        # A replay: queued again, and its retry window starts over.
        self.status, self.error, self.failure_type, self.response = OutboxStatus.QUEUED, "", "", ""
        self.due_at = clock.now()


# The fields the queue writes with its own when a batch finishes (handlers and hooks set them).
UPDATE_FIELDS = ("status", "error", "failure_type", "response", "sent_at", "payload", "run", "due_at")
