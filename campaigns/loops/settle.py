"""Settle enrolments whose waiting step ended without reaching the loop's check.

The email engine applies its own rules before a caller's checks: a send to a contact who was
erased, suppressed, bounced or unsubscribed (a Segment identify with `subscribed: false` does not
go through contacts_unsubscribed) is skipped before campaigns.loops.checks sees it, and staff
may cancel a send. Its enrolment would then wait for ever. This runner (registered as "loops",
run by run_due beside the queues) finds active enrolments whose step is past due, reads their
waiting sends in one query, and ends the ones whose send is over: "unsubscribed" when the
engine said so, else "exited" with the send's status and reason. A step that was sent without
passing the check (it cannot, but a staff retry of an old send might) moves the enrolment on.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction

from campaigns.email.models import EmailSend, SendStatus
from campaigns.loops.models import Enrolment, EnrolmentStatus, LoopStep
from campaigns.loops.services import contacts_hold, steps_schedule
from campaigns.loops.stats import Tally
from common import clock
from contacts.models import Contact

# A due step normally goes within seconds; past this, its enrolment is worth a look.
GRACE = timedelta(minutes=5)
BATCH = 500


def loops_settle(*, max_seconds: float = 5.0) -> dict[str, int]:
    with transaction.atomic():
        return _settle()


def _settle() -> dict[str, int]:
    now = clock.now()
    overdue = Enrolment.objects.filter(status=EnrolmentStatus.ACTIVE, next_due_at__lt=now - GRACE)
    candidates = list(overdue.order_by("next_due_at").values_list("pk", "contact_id")[:BATCH])
    if not candidates:
        return {"ended": 0, "moved on": 0}
    contacts_hold(contact_id for _pk, contact_id in candidates)
    enrolments = list(
        overdue.filter(pk__in=[pk for pk, _contact_id in candidates])
        .select_related("loop")
        .select_for_update(of=("self",), skip_locked=True)
        .order_by("next_due_at")
    )
    counts = {"ended": 0, "moved on": 0}
    if not enrolments:
        return counts
    sends = {
        row["key"]: row
        for row in EmailSend.objects.filter(key__in=[e.step_key(e.position) for e in enrolments]).values(
            "key", "status", "reason"
        )
    }
    tally = Tally()
    changed = []
    moved: list[tuple[Enrolment, LoopStep]] = []
    steps: dict[int, list[LoopStep]] = {}
    for step in LoopStep.objects.filter(loop_id__in={e.loop_id for e in enrolments}).select_related("template"):
        steps.setdefault(step.loop_id, []).append(step)
    for enrolment in enrolments:
        send = sends.get(enrolment.step_key(enrolment.position))
        if send is None or send["status"] == SendStatus.SCHEDULED:
            continue  # still queued (or a backlog): the check will see it
        if send["status"] == SendStatus.SENT:
            following = min(
                (s for s in steps.get(enrolment.loop_id, []) if s.position > enrolment.position),
                key=lambda s: s.position,
                default=None,
            )
            if following is None:
                enrolment.status, enrolment.reason, enrolment.ended_at = (
                    EnrolmentStatus.COMPLETED,
                    "all steps done",
                    now,
                )
                enrolment.next_due_at = None
            else:
                enrolment.position, enrolment.next_due_at = following.position, now + following.delay
                moved.append((enrolment, following))
            counts["moved on"] += 1
        else:
            reason = send["reason"] or send["status"]
            if reason.startswith("unsubscribed"):
                enrolment.status, figure = EnrolmentStatus.UNSUBSCRIBED, "unsubscribed"
            else:
                enrolment.status, figure = EnrolmentStatus.EXITED, "exited"
            enrolment.reason = f"step {enrolment.position} {send['status']}: {reason}"[:300]
            enrolment.ended_at, enrolment.next_due_at = now, None
            tally.add(enrolment.loop_id, figure)
            counts["ended"] += 1
        changed.append(enrolment)
    if changed:
        Enrolment.objects.bulk_update(changed, ["status", "reason", "ended_at", "position", "next_due_at"])
    if moved:
        contacts = Contact.objects.in_bulk([e.contact_id for e, _ in moved if e.contact_id])
        steps_schedule(
            [
                (enrolment, enrolment.loop, step, contacts[enrolment.contact_id], enrolment.next_due_at)
                for enrolment, step in moved
                if enrolment.contact_id in contacts
            ]
        )
    tally.save()
    return counts
