"""Loop writes: start and exit from recorded events, end enrolments, save and delete loops.

Starting. contacts.signals.events_recorded brings a drained chunk's tracks (or one app event)
in one call. `loop_events_apply` loads the enabled loops once, matches names in memory, and
only when a name matches reads, in one query each: the chunk's contacts, their list
memberships, their enrolments in the matching loops, and the steps. Audiences are evaluated
in memory. New enrolments are inserted in one statement and each gets its first step's
EmailSend, due at the event's timestamp plus the first delay. It runs inside the drain's
transaction: a rolled-back chunk starts nothing, and a re-run chunk (same event ids) finds
its enrolments already there.

Steps after the first. Each step's send is scheduled when the step before it comes due and
passes the loop's checks (campaigns.loops.checks), at that moment plus its delay: so the delay
counts from the previous step as the contact sees it, a step added to a loop reaches the
people already in it, and an enrolment never has more than one step waiting. (Scheduling
every step at the start would pin old templates and delays and could send step 3 before a
retried step 2.)

Ending. An exit event, an unsubscribe (contacts.signals.contacts_unsubscribed), or a
due-time check ends the enrolment and cancels its waiting send; the due-time check is the
guarantee, cancelling keeps the admin honest in the meantime.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Max

from campaigns.audience import Audience
from campaigns.email.services import email_sends_cancel, email_sends_schedule_many
from campaigns.loops.models import (
    Enrolment,
    EnrolmentStatus,
    Loop,
    LoopStep,
    Reentry,
    step_key,
)
from campaigns.loops.rules import start_refusal
from campaigns.loops.stats import Tally
from common import clock
from common.bulk import bulk_insert
from contacts.models import Contact, ListMembership
from contacts.signals import RecordedEvent

CONTACT_FIELDS = ("id", "email", "first_name", "last_name", "properties", "subscribed")


@dataclass
class Applied:
    """What one call did, for logs and tests."""

    started: list[Enrolment] = field(default_factory=list)
    exited: list[Enrolment] = field(default_factory=list)
    refused: list[tuple[int, int, str]] = field(default_factory=list)  # (loop id, event id, why)


def event_context(event: RecordedEvent) -> dict:
    """The `event` every step's template sees."""
    return {"name": event.name, "properties": event.properties, "timestamp": event.timestamp.isoformat()}


@transaction.atomic
def loop_events_apply(*, events: list[RecordedEvent]) -> Applied:
    applied = Applied()
    if not events:
        return applied
    names = {e.name for e in events}
    loops = [
        loop
        for loop in Loop.objects.filter(enabled=True)
        if names.intersection(loop.trigger_events) or names.intersection(loop.exit_events)
    ]
    if not loops:
        return applied
    trigger_names = {n for loop in loops for n in loop.trigger_events}
    exit_names = {n for loop in loops for n in loop.exit_events}
    relevant = sorted(
        (e for e in events if e.name in trigger_names or e.name in exit_names), key=lambda e: (e.timestamp, e.event_id)
    )
    starting = {loop.pk: loop for loop in loops if names.intersection(loop.trigger_events)}
    exiting = {loop.pk: loop for loop in loops if names.intersection(loop.exit_events)}
    contact_ids = {e.contact_id for e in relevant}
    contacts_hold(contact_ids)  # a drained chunk holds them already; an app's own event may not

    # Enrolments still running in these loops, locked: a due step being checked waits for us.
    active: dict[tuple[int, int], list[Enrolment]] = defaultdict(list)
    if exiting:
        rows = Enrolment.objects.filter(
            loop_id__in=exiting, contact_id__in=contact_ids, status=EnrolmentStatus.ACTIVE
        ).select_for_update()
        for enrolment in rows.only("id", "loop_id", "contact_id", "event_at", "status", "position"):
            active[(enrolment.loop_id, enrolment.contact_id)].append(enrolment)

    new: list[Enrolment] = []
    trigger_events = [e for e in relevant if e.name in trigger_names]
    if starting and trigger_events:
        new = _starts(starting, trigger_events, applied)
        for enrolment in new:
            active[(enrolment.loop_id, enrolment.contact_id)].append(enrolment)

    # Exits, in event order: each stops the enrolments its loop started from earlier events.
    now = clock.now()
    ended: list[Enrolment] = []
    for event in relevant:
        for loop_id, loop in exiting.items():
            if event.name not in loop.exit_events:
                continue
            for enrolment in active.get((loop_id, event.contact_id), []):
                if enrolment.status == EnrolmentStatus.ACTIVE and enrolment.event_at <= event.timestamp:
                    enrolment.status = EnrolmentStatus.EXITED
                    enrolment.reason = f"exit event {event.name!r} at {event.timestamp:%Y-%m-%d %H:%M:%S} UTC"[:300]
                    enrolment.ended_at = now
                    enrolment.next_due_at = None
                    ended.append(enrolment)

    tally = Tally()
    if new:
        bulk_insert(Enrolment, new)  # one statement, array parameters; sets the pks
        for enrolment in new:
            tally.add(enrolment.loop_id, "started")
        _schedule_first_steps([e for e in new if e.status == EnrolmentStatus.ACTIVE], starting)
        applied.started = new
    if ended:
        stored = [e for e in ended if e.pk is not None and e not in new]
        Enrolment.objects.bulk_update(stored, ["status", "reason", "ended_at", "next_due_at"])
        _cancel_waiting(stored, "exited")
        for enrolment in ended:
            tally.add(enrolment.loop_id, "exited")
        applied.exited = ended
    tally.save()
    return applied


def _starts(loops: dict[int, Loop], events: list[RecordedEvent], applied: Applied) -> list[Enrolment]:
    """The enrolments these trigger events start (not saved), in event order."""
    contact_ids = {e.contact_id for e in events}
    event_ids = [e.event_id for e in events]
    started_before = set(
        Enrolment.objects.filter(trigger_event_id__in=event_ids, loop_id__in=loops).values_list(
            "trigger_event_id", "loop_id"
        )
    )
    last: dict[tuple[int, int], datetime] = {}
    reentry_loops = [pk for pk, loop in loops.items() if loop.reentry != Reentry.EVERY_TIME]
    if reentry_loops:
        for row in (
            Enrolment.objects.filter(loop_id__in=reentry_loops, contact_id__in=contact_ids)
            .values("loop_id", "contact_id")
            .annotate(last=Max("event_at"))
        ):
            last[(row["loop_id"], row["contact_id"])] = row["last"]
    contacts = {c.pk: c for c in Contact.objects.filter(pk__in=contact_ids).only(*CONTACT_FIELDS)}
    list_ids = {loop.mailing_list_id for loop in loops.values() if loop.mailing_list_id is not None}
    lists: dict[tuple[int, int], bool] = {}
    if list_ids:
        lists = {
            (contact_id, list_id): subscribed
            for contact_id, list_id, subscribed in ListMembership.objects.filter(
                contact_id__in=contact_ids, mailing_list_id__in=list_ids
            ).values_list("contact_id", "mailing_list_id", "subscribed")
        }
    steps = first_steps(loops)
    audiences = {pk: Audience(loop.audience) for pk, loop in loops.items()}
    now = clock.now()
    new: list[Enrolment] = []
    for event in events:
        contact = contacts.get(event.contact_id)
        for loop_id, loop in loops.items():
            if event.name not in loop.trigger_events or (event.event_id, loop_id) in started_before:
                continue
            why = start_refusal(
                loop,
                audience=audiences[loop_id],
                has_steps=loop_id in steps,
                contact=contact,
                list_state=lists.get((event.contact_id, loop.mailing_list_id)),
                event_at=event.timestamp,
                last_event_at=last.get((loop_id, event.contact_id)),
            )
            if why:
                applied.refused.append((loop_id, event.event_id, why))
                continue
            step = steps[loop_id]
            enrolment = Enrolment(
                loop_id=loop_id,
                contact_id=event.contact_id,
                trigger_event_id=event.event_id,
                event=event_context(event),
                event_at=event.timestamp,
                started_at=now,
                position=step.position,
                next_due_at=event.timestamp + step.delay,
            )
            enrolment._contact = contact
            new.append(enrolment)
            previous = last.get((loop_id, event.contact_id))
            last[(loop_id, event.contact_id)] = max(previous, event.timestamp) if previous else event.timestamp
    return new


def first_steps(loops: Iterable[int]) -> dict[int, LoopStep]:
    """Each loop's first step (with its template), in one query."""
    first: dict[int, LoopStep] = {}
    for step in LoopStep.objects.filter(loop_id__in=list(loops)).select_related("template").order_by("position"):
        first.setdefault(step.loop_id, step)
    return first


def _schedule_first_steps(enrolments: list[Enrolment], loops: dict[int, Loop]) -> None:
    steps = first_steps({e.loop_id for e in enrolments})
    steps_schedule([(e, loops[e.loop_id], steps[e.loop_id], e._contact, e.next_due_at) for e in enrolments])


def steps_schedule(items: list[tuple[Enrolment, Loop, LoopStep, Contact, datetime]]) -> int:
    """Each (enrolment, loop, step, contact, due) as its EmailSend, in one insert. A step's key
    makes it once per enrolment and step, however often this runs. Returns how many were new."""
    if not items:
        return 0
    return email_sends_schedule_many(
        sends=[
            {
                "contact": contact,
                "template": step.template,
                "purpose": "loop",
                "due_at": due_at,
                "key": step_key(loop.pk, enrolment.pk, step.position),
                "event": enrolment.event,
                "late_policy": loop.late_policy,
                "late_after": timedelta(minutes=loop.late_after_minutes)
                if loop.late_after_minutes is not None
                else None,
                "origin": f"loop {loop.name!r} step {step.position}"[:200],
            }
            for enrolment, loop, step, contact, due_at in items
        ]
    )


def contacts_hold(contact_ids) -> None:
    """Take the contacts' key-share locks (PostgreSQL), in id order, before locking enrolments.

    A drained chunk holds its contacts (FOR UPDATE) and then locks enrolments to exit them. A
    due-time check or the settling runner locks enrolments and then inserts the next step's
    send, whose foreign key takes a key-share lock on the contact. Taking that lock first
    gives every path the same order, contacts then enrolments, so they wait for each other
    instead of deadlocking.
    """
    ids = sorted({pk for pk in contact_ids if pk is not None})
    if not ids or connection.vendor != "postgresql":
        return
    table = connection.ops.quote_name(Contact._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {table} WHERE id = ANY(%s) ORDER BY id FOR KEY SHARE", [ids])  # noqa: S608


def _cancel_waiting(enrolments: list[Enrolment], why: str) -> int:
    """Skip the sends the enrolments have waiting (their current step), with the reason."""
    by_reason: dict[str, list[str]] = defaultdict(list)
    for enrolment in enrolments:
        if enrolment.pk is not None and enrolment.position:
            by_reason[f"{why}: {enrolment.reason}"[:500]].append(enrolment.step_key(enrolment.position))
    return sum(email_sends_cancel(keys=keys, reason=reason) for reason, keys in by_reason.items())


@transaction.atomic
def enrolments_end(*, queryset, status: str, reason: str, figure: str | None = None) -> int:
    """End the active enrolments of `queryset` (exited or unsubscribed) and cancel their
    waiting sends. Returns how many ended."""
    now = clock.now()
    rows = list(
        queryset.select_related(None)
        .filter(status=EnrolmentStatus.ACTIVE)
        .select_for_update()
        .only("id", "loop_id", "position")
    )
    if not rows:
        return 0
    for enrolment in rows:
        enrolment.status, enrolment.reason, enrolment.ended_at, enrolment.next_due_at = status, reason[:300], now, None
    Enrolment.objects.bulk_update(rows, ["status", "reason", "ended_at", "next_due_at"])
    _cancel_waiting(rows, status)
    tally = Tally()
    for enrolment in rows:
        tally.add(enrolment.loop_id, figure or status)
    tally.save()
    return len(rows)


# --- staff: loops and their steps ---------------------------------------------------------------
@transaction.atomic
def loop_steps_set(*, loop: Loop, steps: list[dict]) -> list[LoopStep]:
    """Make the loop's steps these, in order ({delay_minutes or delay_value + delay_unit,
    template}). Positions stay 1..n, so people part-way through keep their place."""
    existing = {s.position: s for s in loop.steps.all()}
    kept = []
    for position, data in enumerate(steps, start=1):
        if "delay_minutes" in data:
            value, unit = LoopStep.split_minutes(int(data["delay_minutes"]))
        else:
            value, unit = int(data["delay_value"]), data["delay_unit"]
        step = existing.pop(position, None) or LoopStep(loop=loop, position=position)
        step.delay_value, step.delay_unit, step.template = value, unit, data["template"]
        step.save()
        kept.append(step)
    if existing:
        LoopStep.objects.filter(pk__in=[s.pk for s in existing.values()]).delete()
    return kept


@transaction.atomic
def loop_delete(*, loop: Loop) -> None:
    """Delete a loop: its waiting sends are skipped ("loop deleted"), its history goes with it."""
    waiting = list(Enrolment.objects.filter(loop=loop, status=EnrolmentStatus.ACTIVE).only("id", "loop_id", "position"))
    keys = [e.step_key(e.position) for e in waiting if e.position]
    if keys:
        email_sends_cancel(keys=keys, reason="loop deleted")
    loop.delete()
