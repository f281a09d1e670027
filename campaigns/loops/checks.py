"""The loops' due-time check, registered with the email engine for purpose "loop".

The engine calls it with a batch of due loop sends that passed its own rules (contact erased,
suppressed, bounced, unsubscribed from marketing) and skips each send it answers for, with the
reason. In a few queries for the whole batch (enrolments with their loops, steps, contacts,
list memberships), it:

- skips, and ends the enrolment, when the enrolment exited ("exited: …"), the contact
  unsubscribed ("unsubscribed"), left the loop's list ("not on the list", "unsubscribed from
  the list") or the loop is disabled ("loop disabled") or gone;
- lets the step go otherwise, and schedules the next one: due now plus its delay, so each
  step's delay counts from the step before it; after the last step the enrolment completes.

The engine may check a send more than once (a retried batch): the step's send key and the
enrolment's position make a second pass change nothing.
"""

from __future__ import annotations

from django.db import transaction

from campaigns.loops.models import Enrolment, EnrolmentStatus, LoopStep, parse_step_key
from campaigns.loops.services import contacts_hold, steps_schedule
from campaigns.loops.stats import Tally
from common import clock
from contacts.models import Contact, ListMembership


def loop_send_check(sends: list) -> dict[int, str]:
    if not sends:
        return {}
    with transaction.atomic():
        return _check(sends)


def _check(sends: list) -> dict[int, str]:
    keyed = {send.pk: parse_step_key(send.key) for send in sends}
    enrolment_ids = {k[1] for k in keyed.values() if k is not None}
    contacts_hold(send.contact_id for send in sends)
    enrolments = {
        e.pk: e
        for e in Enrolment.objects.filter(pk__in=enrolment_ids)
        .select_related("loop", "loop__mailing_list")
        .select_for_update(of=("self",))
    }
    loop_ids = {e.loop_id for e in enrolments.values()}
    steps: dict[int, list[LoopStep]] = {}
    for step in LoopStep.objects.filter(loop_id__in=loop_ids).select_related("template").order_by("position"):
        steps.setdefault(step.loop_id, []).append(step)
    contact_ids = {e.contact_id for e in enrolments.values() if e.contact_id}
    contacts = {c.pk: c for c in Contact.objects.filter(pk__in=contact_ids).only("id", "email", "subscribed")}
    list_ids = {e.loop.mailing_list_id for e in enrolments.values() if e.loop.mailing_list_id}
    lists: dict[tuple[int, int], bool] = {}
    if list_ids:
        lists = {
            (c, m): s
            for c, m, s in ListMembership.objects.filter(
                contact_id__in=contact_ids, mailing_list_id__in=list_ids
            ).values_list("contact_id", "mailing_list_id", "subscribed")
        }

    now = clock.now()
    skips: dict[int, str] = {}
    ended: dict[str, list[Enrolment]] = {}  # figure → enrolments ended now
    changed: dict[int, Enrolment] = {}
    to_schedule: list[tuple[Enrolment, LoopStep]] = []

    def end(enrolment: Enrolment, status: str, reason: str, figure: str) -> None:
        enrolment.status, enrolment.reason, enrolment.ended_at = status, reason[:300], now
        enrolment.next_due_at = None
        changed[enrolment.pk] = enrolment
        ended.setdefault(figure, []).append(enrolment)

    for send in sorted(sends, key=lambda s: (s.due_at, s.pk)):
        parsed = keyed[send.pk]
        if parsed is None:
            skips[send.pk] = "not a loop step (unknown key)"
            continue
        _loop_id, enrolment_id, position = parsed
        enrolment = enrolments.get(enrolment_id)
        if enrolment is None:
            skips[send.pk] = "loop deleted"
            continue
        if enrolment.status == EnrolmentStatus.EXITED:
            skips[send.pk] = f"exited: {enrolment.reason}" if enrolment.reason else "exited"
            continue
        if enrolment.status == EnrolmentStatus.UNSUBSCRIBED:
            skips[send.pk] = f"unsubscribed: {enrolment.reason}" if enrolment.reason else "unsubscribed"
            continue
        if position < enrolment.position or enrolment.status == EnrolmentStatus.COMPLETED:
            continue  # a step checked before (a retried send): it went through then
        loop = enrolment.loop
        if not loop.enabled:
            skips[send.pk] = "loop disabled"
            end(enrolment, EnrolmentStatus.EXITED, "loop disabled", "exited")
            continue
        contact = contacts.get(enrolment.contact_id)
        if contact is not None and not contact.subscribed:
            # Transactional templates reach this far; a loop still stops for an unsubscribe.
            skips[send.pk] = "unsubscribed"
            end(enrolment, EnrolmentStatus.UNSUBSCRIBED, "unsubscribed from email", "unsubscribed")
            continue
        if loop.mailing_list_id:
            state = lists.get((enrolment.contact_id, loop.mailing_list_id))
            list_name = loop.mailing_list.list_id
            if state is None:
                skips[send.pk] = "not on the list"
                end(enrolment, EnrolmentStatus.EXITED, f"not on the list {list_name}", "exited")
                continue
            if state is False:
                skips[send.pk] = "unsubscribed from the list"
                end(enrolment, EnrolmentStatus.UNSUBSCRIBED, f"unsubscribed from the list {list_name}", "unsubscribed")
                continue
        loop_steps = steps.get(loop.pk, [])
        if not any(step.position == position for step in loop_steps):
            skips[send.pk] = "step removed from the loop"
        following = next((step for step in loop_steps if step.position > position), None)
        if following is None:
            enrolment.status, enrolment.ended_at, enrolment.next_due_at = EnrolmentStatus.COMPLETED, now, None
            enrolment.reason = "all steps done"
        else:
            enrolment.position, enrolment.next_due_at = following.position, now + following.delay
            to_schedule.append((enrolment, following))
        changed[enrolment.pk] = enrolment

    if changed:
        Enrolment.objects.bulk_update(
            list(changed.values()), ["status", "reason", "ended_at", "position", "next_due_at"]
        )
    steps_schedule(
        [
            (enrolment, enrolment.loop, step, contacts[enrolment.contact_id], enrolment.next_due_at)
            for enrolment, step in to_schedule
            if enrolment.status == EnrolmentStatus.ACTIVE and enrolment.contact_id in contacts
        ]
    )
    tally = Tally()
    for figure, rows in ended.items():
        # Nothing to cancel: an enrolment has one step waiting at a time, the one skipped here.
        for enrolment in rows:
            tally.add(enrolment.loop_id, figure)
    tally.save()
    return skips
