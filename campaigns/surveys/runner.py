"""The "surveys" runner (run by run_due beside the queues, and kicked when a survey goes out).

1. Follow-ups of surveys just sent, in bulk: each reminder scheduled its delay after the send
   (key `survey:<id>:reminder:<n>`, checked again when due), the contact added to the
   campaign's list (a person who left the list is not put back), `last_surveyed_at` set, and
   the "sent" figure counted. The email engine's email_sent receiver only marks the dispatch
   sent; the rest waits here, so a send costs the sending worker one UPDATE.
2. Settling: a scheduled dispatch whose email the engine skipped or failed before the surveys'
   own check saw it (unsubscribed, suppressed, bounced, cancelled by staff, a template error)
   ends `skipped` with the matching reason, the engine's words in its note; one whose own
   hand-over failed for good ends `skipped` as `failed`.
3. Notification digests whose day or week is over.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from django.db import transaction

from campaigns.email.models import EmailSend, SendStatus
from campaigns.email.services import email_sends_schedule_many
from campaigns.notifications.services import digests_send
from campaigns.surveys.dispatching import context_for
from campaigns.surveys.models import CampaignReminder, DispatchStatus, Reason, SurveyDispatch, send_key
from campaigns.surveys.results import surveyed_set
from campaigns.surveys.stats import SENT, Tally
from common import clock
from contacts.models import Contact, ListMembership

BATCH = 500
GRACE = timedelta(minutes=5)


def surveys_run(*, max_seconds: float = 5.0) -> dict[str, int]:
    return {
        "followed up": surveys_follow_up(),
        "settled": dispatches_settle(),
        "digests": digests_send(),
    }


@transaction.atomic
def surveys_follow_up(*, limit: int = BATCH) -> int:
    rows = list(
        SurveyDispatch.objects.filter(followed_up=False)
        .select_related("campaign", "campaign__template")
        .select_for_update(of=("self",), skip_locked=True)
        .order_by("pk")[:limit]
    )
    if not rows:
        return 0
    reminders: dict[int, list[CampaignReminder]] = defaultdict(list)
    for reminder in CampaignReminder.objects.filter(campaign_id__in={d.campaign_id for d in rows}).select_related(
        "template"
    ):
        reminders[reminder.campaign_id].append(reminder)
    contacts = Contact.objects.only("id", "email", "subscribed").in_bulk({d.contact_id for d in rows if d.contact_id})
    sends = []
    members = []
    tally = Tally()
    surveyed = {}
    for dispatch in rows:
        sent_at = dispatch.sent_at or clock.now()
        tally.add(dispatch.campaign_id, SENT, day=sent_at.date())
        contact = contacts.get(dispatch.contact_id)
        if contact is None:
            continue
        surveyed[contact.pk] = max(sent_at, surveyed.get(contact.pk, sent_at))
        if dispatch.campaign.contact_list_id:
            members.append(ListMembership(contact_id=contact.pk, mailing_list_id=dispatch.campaign.contact_list_id))
        if dispatch.status != DispatchStatus.SENT:
            continue  # answered already: no reminder
        context = None
        for reminder in sorted(reminders.get(dispatch.campaign_id, []), key=lambda r: r.position):
            context = context or context_for(dispatch)
            sends.append(
                {
                    "contact": contact,
                    "template": reminder.template,
                    "purpose": "reminder",
                    "due_at": sent_at + timedelta(minutes=reminder.delay_minutes),
                    "key": dispatch.reminder_key(reminder.position),
                    "event": dispatch.event,
                    "extra_context": {"survey": context},
                    "reply_to": dispatch.campaign.reply_to,
                    "origin": f"survey {dispatch.campaign.name!r} reminder {reminder.position}"[:200],
                }
            )
    if sends:
        email_sends_schedule_many(sends=sends)
    if members:
        ListMembership.objects.bulk_create(members, ignore_conflicts=True)
    surveyed_set(when=surveyed)
    tally.save()
    SurveyDispatch.objects.filter(pk__in=[d.pk for d in rows]).update(followed_up=True)
    return len(rows)


def reason_for(status: str, engine_reason: str) -> str:
    """The dispatch's reason for a survey email the engine did not send."""
    text = (engine_reason or "").lower()
    if text.startswith("unsubscribed"):
        return Reason.UNSUBSCRIBED
    if text.startswith(("suppressed", "bounced", "complained", "contact erased")) or status in (
        SendStatus.BOUNCED,
        SendStatus.COMPLAINED,
    ):
        return Reason.SUPPRESSED
    if text.startswith("no email address"):
        return Reason.FILTERED
    if text.startswith("frequency cap") or text.startswith("throttled"):
        return Reason.THROTTLED
    if text.startswith("paused"):
        return Reason.PAUSED
    return Reason.FAILED


@transaction.atomic
def dispatches_settle(*, limit: int = BATCH) -> int:
    now = clock.now()
    rows = list(
        SurveyDispatch.objects.filter(status=DispatchStatus.SCHEDULED, due_at__lt=now - GRACE)
        .select_for_update(skip_locked=True)
        .order_by("due_at")[:limit]
    )
    if not rows:
        return 0
    sends = {
        key: (status, reason, sent_at)
        for key, status, reason, sent_at in EmailSend.objects.filter(
            key__in=[send_key(d.pk) for d in rows]
        ).values_list("key", "status", "reason", "sent_at")
    }
    changed = []
    for dispatch in rows:
        found = sends.get(send_key(dispatch.pk))
        if found is None and dispatch.next_attempt_at is None and dispatch.finished_at is not None:
            # Its own work failed for good (out of attempts): it never reached the engine.
            dispatch.status, dispatch.reason = DispatchStatus.SKIPPED, Reason.FAILED
            dispatch.note = f"could not be handed to the email engine: {dispatch.last_error}"[:300]
            changed.append(dispatch)
            continue
        if found is None or found[0] == SendStatus.SCHEDULED:
            continue  # still queued (a backlog, a retry): it will get there
        status, reason, sent_at = found
        if status == SendStatus.SENT or (status in (SendStatus.BOUNCED, SendStatus.COMPLAINED) and sent_at):
            dispatch.status, dispatch.sent_at, dispatch.followed_up = DispatchStatus.SENT, sent_at, False
        else:
            dispatch.status = DispatchStatus.SKIPPED
            dispatch.reason = reason_for(status, reason)
            dispatch.note = f"survey email {status}: {reason}"[:300] if reason else f"survey email {status}"
        changed.append(dispatch)
    if changed:
        SurveyDispatch.objects.bulk_update(changed, ["status", "reason", "note", "sent_at", "followed_up"])
    return len(changed)
