"""The queue's tables: `WorkItem`, the abstract row every queue table inherits, and `Attempt`,
the attempt log shared by every queue.

A concrete queue (email sends, survey dispatches, webhook deliveries, outbox items) is a model
of its own app that inherits WorkItem and keeps its domain fields (status, due_at, payload);
WorkItem holds only the queue's mechanics:

- `next_attempt_at`: when a worker may take the row. Null means nothing to do (finished,
  cancelled, or not scheduled yet). A claim pushes it to now + lease, so a row held by a worker
  that died comes due again by itself; a running worker renews it (heartbeats).
- `attempts`: claims so far, counted at the claim, so an attempt that crashed still counts.
- `claimed_by` / `claimed_at`: the worker holding the row and since when; cleared when the
  attempt finishes. A row claimed again while they are still set was lost by its worker.
- `last_error`, `finished_at`: the last failure, and when the row ended (done, skipped or
  failed for good). Failed for good = finished with an error.

The log follows saleor's EventDelivery / EventDeliveryAttempt and healthchecks'
Notification: one Attempt row per try, with when, how long, the answer and the error, for staff.
"""

from __future__ import annotations

from django.contrib.contenttypes.fields import GenericForeignKey, GenericRelation
from django.contrib.contenttypes.models import ContentType
from django.db import models

from common import clock


def due_index(name: str) -> models.Index:
    """The partial index every claim walks: due rows in (next_attempt_at, id) order.

    WorkItem declares it as `<app_label>_<class>_due`. Index names are limited to 30
    characters: a concrete model whose name is longer declares `indexes = [due_index("short")]`
    in a `class Meta(WorkItem.Meta)` of its own.
    """
    return models.Index(fields=["next_attempt_at", "id"], condition=models.Q(next_attempt_at__isnull=False), name=name)


class QueueStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    RETRYING = "retrying", "retrying"
    DONE = "done", "done"
    FAILED = "failed", "failed"
    STOPPED = "stopped", "stopped"


class WorkItem(models.Model):
    """A row due at a time, claimed by one worker, retried with backoff, never done twice.

    Subclasses keep the index by declaring `class Meta(WorkItem.Meta)` when they need a Meta.
    Hooks (`work_failed`, `work_cancelled`, `work_retried`) let the domain status follow the
    queue: they set fields on the instance, which the queue writes with its own in bulk (list
    them in the work type's `update_fields`).
    """

    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="When a worker may take it next; empty when there is nothing to do."
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    claimed_by = models.CharField(max_length=100, blank=True, default="", help_text="The worker running it now.")
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    work_attempts = GenericRelation("common.Attempt")

    class Meta:
        abstract = True
        indexes = [due_index("%(app_label)s_%(class)s_due")]

    # --- domain hooks ------------------------------------------------------------------
    def work_failed(self, error: str) -> None:
        """Called when the item fails for good (permanent error or out of attempts)."""

    def work_cancelled(self) -> None:
        """Called when staff cancel the item."""

    def work_retried(self) -> None:
        """Called when staff queue the item to run again now."""

    # --- reading the state ----------------------------------------------------------------
    @property
    def queue_status(self) -> str:
        if self.finished_at is not None and self.next_attempt_at is None:
            return QueueStatus.FAILED if self.last_error else QueueStatus.DONE
        if self.next_attempt_at is None:
            return QueueStatus.STOPPED
        if self.claimed_by and self.next_attempt_at > clock.now():
            return QueueStatus.RUNNING
        return QueueStatus.RETRYING if self.attempts else QueueStatus.QUEUED


class AttemptOutcome(models.TextChoices):
    OK = "ok", "ok"
    RETRY = "retry", "failed, will retry"
    FAILED = "failed", "failed for good"
    AMBIGUOUS = "ambiguous", "ambiguous (may have taken effect)"
    SKIPPED = "skipped", "skipped"


class Attempt(models.Model):
    """One try at one queued item, for staff: when, how long, the answer, the error."""

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.PositiveBigIntegerField()
    item = GenericForeignKey("content_type", "object_id")
    number = models.PositiveIntegerField(help_text="Which attempt at the item this was (1 = the first).")
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Empty when its worker was lost.")
    outcome = models.CharField(max_length=10, choices=AttemptOutcome.choices)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    worker = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["content_type", "object_id", "-started_at"], name="common_attempt_item")]

    def __str__(self) -> str:
        return f"attempt {self.number} at {self.content_type_id}:{self.object_id}: {self.outcome}"
