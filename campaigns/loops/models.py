"""Loops: emails that follow an event (Loops' "loops"), step by step.

A Loop starts for a contact when one of its trigger events is recorded on them (a Segment track,
or an app's own event through contacts.services.contact_event_record): an Enrolment. Each
LoopStep is a template sent a delay after the step before it (the first: after the event's
timestamp), as one EmailSend of the email engine. Every rule is checked again when a step is due
(campaigns.loops.checks), so someone who exits, unsubscribes or leaves the list gets no further
step, and the skipped send says why.

LoopDay keeps the per-day figures (started, emailed, exited, unsubscribed), written with the
changes that make them, so the admin and the API read a few rows per loop instead of counting
its enrolments.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.db.models import Q

from campaigns.email.models import LatePolicy
from common import clock
from common.fields import JSONField


class Reentry(models.TextChoices):
    ONCE = "once", "once"
    EVERY_TIME = "every_time", "every time"
    AFTER_DAYS = "after_days", "again after N days"


class Loop(models.Model):
    name = models.CharField(max_length=200, unique=True)
    enabled = models.BooleanField(
        default=False, help_text="Only enabled loops start; due steps of a disabled one are skipped."
    )
    trigger_events = JSONField(default=list, blank=True, help_text="Event names that start the loop.")
    exit_events = JSONField(default=list, blank=True, help_text="Event names that stop its remaining steps.")
    reentry = models.CharField(max_length=12, choices=Reentry.choices, default=Reentry.ONCE)
    reentry_days = models.PositiveIntegerField(null=True, blank=True, help_text="With 'again after N days': N.")
    mailing_list = models.ForeignKey(
        "contacts.MailingList",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="loops",
        help_text="Only contacts subscribed to this list; checked at the trigger and again at each step.",
    )
    audience = JSONField(default=dict, blank=True, help_text="Audience conditions, checked at the trigger.")
    late_policy = models.CharField(
        max_length=8,
        choices=LatePolicy.choices,
        default=LatePolicy.SEND,
        help_text="A step found due later than the threshold (the queue was down, an old event was replayed).",
    )
    late_after_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="How late a step may go out; empty: never late."
    )
    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DelayUnit(models.TextChoices):
    MINUTES = "minutes", "minutes"
    HOURS = "hours", "hours"
    DAYS = "days", "days"


UNIT_MINUTES = {DelayUnit.MINUTES: 1, DelayUnit.HOURS: 60, DelayUnit.DAYS: 1440}


class Delayed:
    """For models with a `delay_value` in a `delay_unit`: the delay in minutes and as a timedelta
    (loop steps, survey campaigns and their reminders)."""

    @property
    def delay_minutes(self) -> int:
        return self.delay_value * UNIT_MINUTES[self.delay_unit]

    @property
    def delay(self) -> timedelta:
        return timedelta(minutes=self.delay_minutes)

    @staticmethod
    def split_minutes(minutes: int) -> tuple[int, str]:
        """delay_minutes (the API's) as the largest whole unit: 1440 → (1, days)."""
        for unit in (DelayUnit.DAYS, DelayUnit.HOURS):
            if minutes and minutes % UNIT_MINUTES[unit] == 0:
                return minutes // UNIT_MINUTES[unit], unit
        return minutes, DelayUnit.MINUTES


class LoopStep(Delayed, models.Model):
    loop = models.ForeignKey(Loop, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField(help_text="1 is the first step.")
    delay_value = models.PositiveIntegerField(default=0, help_text="After the previous step (the first: the event).")
    delay_unit = models.CharField(max_length=8, choices=DelayUnit.choices, default=DelayUnit.DAYS)
    template = models.ForeignKey("campaigns.EmailTemplate", on_delete=models.PROTECT, related_name="loop_steps")

    class Meta:
        ordering = ["loop", "position"]
        constraints = [models.UniqueConstraint(fields=["loop", "position"], name="loopstep_unique_position")]

    def __str__(self) -> str:
        return f"step {self.position}, {self.delay_text} after the one before"

    @property
    def delay_text(self) -> str:
        unit = self.delay_unit[:-1] if self.delay_value == 1 else self.delay_unit
        return f"{self.delay_value} {unit}"


class EnrolmentStatus(models.TextChoices):
    ACTIVE = "active", "active"
    COMPLETED = "completed", "completed"
    EXITED = "exited", "exited"
    UNSUBSCRIBED = "unsubscribed", "unsubscribed"


class Enrolment(models.Model):
    """One contact going through one loop, started by one event.

    Unique per (trigger event, loop): a re-drained chunk announces the same event ids and
    starts nothing new. `position` is the step whose send is pending (or was the last);
    `next_due_at` when it is due, empty once the enrolment has ended.
    """

    loop = models.ForeignKey(Loop, on_delete=models.CASCADE, related_name="enrolments", db_index=False)
    # Kept (emptied) when the contact is erased, so the loop's figures stay true.
    contact = models.ForeignKey(
        "contacts.Contact",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="loop_enrolments",
        db_index=False,
    )
    # The ContactEvent's id, not a foreign key: events are the contacts app's to prune or erase.
    trigger_event_id = models.BigIntegerField()
    event = JSONField(
        default=dict, blank=True, help_text="The trigger as templates see it: name, properties, timestamp."
    )
    event_at = models.DateTimeField(help_text="The trigger event's timestamp: the first step counts from it.")
    started_at = models.DateTimeField(default=clock.now)
    status = models.CharField(max_length=12, choices=EnrolmentStatus.choices, default=EnrolmentStatus.ACTIVE)
    reason = models.CharField(max_length=300, blank=True, help_text="Why it ended.")
    ended_at = models.DateTimeField(null=True, blank=True)
    position = models.PositiveSmallIntegerField(default=0, help_text="The step scheduled last.")
    next_due_at = models.DateTimeField(null=True, blank=True, help_text="When that step is due; empty once ended.")
    emails_sent = models.PositiveSmallIntegerField(default=0)
    sent_position = models.PositiveSmallIntegerField(default=0, help_text="The last step that was sent.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["trigger_event_id", "loop"], name="enrolment_event_loop")]
        indexes = [
            # Re-entry and exits: a loop's enrolments of the chunk's contacts. Serves the loop FK.
            models.Index(fields=["loop", "contact", "-event_at"], name="enrolment_loop_contact"),
            # The contact page's enrolments (and the contact FK).
            models.Index(fields=["contact", "-started_at"], name="enrolment_contact"),
            # The admin list (newest first, by id) filtered by status or by loop.
            models.Index(fields=["status", "-id"], name="enrolment_status"),
            models.Index(fields=["loop", "-id"], name="enrolment_loop_recent"),
            # Settling: active enrolments whose step is overdue.
            models.Index(fields=["next_due_at"], name="enrolment_due", condition=Q(status="active")),
        ]

    def __str__(self) -> str:
        return f"{self.loop_id}/{self.contact_id or 'erased'} ({self.status})"

    def step_key(self, position: int) -> str:
        return step_key(self.loop_id, self.pk, position)


def step_key(loop_id: int, enrolment_id: int, position: int) -> str:
    """The idempotency key of one step's email: one send per enrolment and step, ever."""
    return f"loop:{loop_id}:enrolment:{enrolment_id}:step:{position}"


def parse_step_key(key: str) -> tuple[int, int, int] | None:
    """(loop id, enrolment id, position) from a step's key, or None."""
    parts = (key or "").split(":")
    if len(parts) != 6 or parts[0] != "loop" or parts[2] != "enrolment" or parts[4] != "step":
        return None
    try:
        return int(parts[1]), int(parts[3]), int(parts[5])
    except ValueError:
        return None


class LoopDay(models.Model):
    """A loop's figures for one UTC day, incremented by the statements that change them."""

    loop = models.ForeignKey(Loop, on_delete=models.CASCADE, related_name="days", db_index=False)
    day = models.DateField()
    started = models.PositiveIntegerField(default=0)
    emailed = models.PositiveIntegerField(default=0)
    exited = models.PositiveIntegerField(default=0)
    unsubscribed = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day"]
        constraints = [models.UniqueConstraint(fields=["loop", "day"], name="loopday_unique")]

    def __str__(self) -> str:
        return f"{self.loop_id} {self.day}"
