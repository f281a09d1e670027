"""The "survey_dispatch" work type: a survey whose time has come hands its email to the engine.

The drain only inserts dispatch rows (one statement per chunk); the survey email is made here,
when the dispatch is due, a batch at a time: so a trigger costs the drain little, a delayed
survey uses the campaign's template and question as they are when it goes, and the rules
that depend on time are checked again:

- the campaign is still ready or active, else the dispatch is skipped as `paused`;
- no other survey went to the contact within SURVEY_CONTACT_LIMIT_HOURS (24), in this batch
  either, else `throttled` (a backlog can bring together surveys the trigger-time rule kept a
  day apart).

The rest (one EmailSend per dispatch, key `survey:<id>`, due at the dispatch's time, with the
survey's links in `event.survey`) goes through email_sends_schedule_many in one insert; the
engine's own rules (unsubscribed, suppressed, bounced) are checked when it sends.
"""

from __future__ import annotations

from django.db import transaction

from campaigns.email.services import email_sends_schedule_many
from campaigns.surveys.links import survey_context, survey_token
from campaigns.surveys.models import DispatchStatus, Reason, SurveyDispatch, send_key
from campaigns.surveys.rules import contact_limit
from common import clock
from common.bulk import bulk_update
from common.workqueue import Outcome
from contacts.models import Contact

WORK_TYPE = "survey_dispatch"
CONTACT_FIELDS = ("id", "email", "first_name", "last_name", "user_id", "properties", "subscribed")


def context_for(dispatch: SurveyDispatch) -> dict:
    """What the survey's and its reminders' templates see as `event.survey`."""
    campaign = dispatch.campaign
    token = survey_token(dispatch_id=dispatch.pk, due_at=dispatch.due_at)
    return survey_context(scale=campaign.scale, question=campaign.question, campaign_id=campaign.pk, token=token)


def recently_sent(contact_ids: set[int], *, exclude: list[int]) -> set[int]:
    limit = contact_limit()
    if not limit or not contact_ids:
        return set()
    return set(
        SurveyDispatch.objects.filter(
            contact_id__in=contact_ids,
            status__in=(DispatchStatus.SENT, DispatchStatus.RESPONDED),
            sent_at__gt=clock.now() - limit,
        )
        .exclude(pk__in=exclude)
        .values_list("contact_id", flat=True)
    )


def dispatches_due(items: list[SurveyDispatch]) -> dict[int, Outcome]:
    with transaction.atomic():
        return _due(items)


def _due(items: list[SurveyDispatch]) -> dict[int, Outcome]:
    outcomes: dict[int, Outcome] = {}
    live = []
    for item in items:
        if item.status != DispatchStatus.SCHEDULED:
            outcomes[item.pk] = Outcome.skipped(f"already {item.status}")
        else:
            live.append(item)
    if not live:
        return outcomes
    rows = {
        d.pk: d
        for d in SurveyDispatch.objects.filter(pk__in=[i.pk for i in live]).select_related(
            "campaign", "campaign__template"
        )
    }
    contacts = Contact.objects.only(*CONTACT_FIELDS).in_bulk({i.contact_id for i in live if i.contact_id})
    surveyed = recently_sent(set(contacts), exclude=[i.pk for i in live])
    hours = contact_limit().total_seconds() / 3600
    sends = []
    skipped = []
    for item in sorted(live, key=lambda i: (i.due_at or clock.now(), i.pk)):
        dispatch = rows.get(item.pk)
        contact = contacts.get(item.contact_id) if item.contact_id else None
        reason = note = ""
        if dispatch is None:
            outcomes[item.pk] = Outcome.skipped("deleted")
            continue
        if contact is None:
            reason, note = Reason.SUPPRESSED, "the contact was erased"
        elif not dispatch.campaign.live:
            reason, note = Reason.PAUSED, f"campaign {dispatch.campaign.status} when the survey was due"
        elif contact.pk in surveyed:
            reason = Reason.THROTTLED
            note = f"another survey was sent within {hours:g} hours (at most one per {hours:g} hours per contact)"
        if reason:
            item.status, item.reason, item.note = DispatchStatus.SKIPPED, reason, note[:300]
            skipped.append(item)
            outcomes[item.pk] = Outcome.skipped(f"{reason}: {note}")
            continue
        if hours:
            surveyed.add(contact.pk)
        campaign = dispatch.campaign
        sends.append(
            {
                "contact": contact,
                "template": campaign.template,
                "purpose": "survey",
                "due_at": dispatch.due_at,
                "key": send_key(dispatch.pk),
                "event": dispatch.event,
                "extra_context": {"survey": context_for(dispatch)},
                "reply_to": campaign.reply_to,
                "origin": f"survey {campaign.name!r}"[:200],
            }
        )
        outcomes[item.pk] = Outcome.ok(response="survey email scheduled")
    # Written here, not by the queue's finish: an email handed over may be sent (and its dispatch
    # marked sent) by another worker before this batch's finish is written.
    bulk_update(SurveyDispatch, skipped, ["status", "reason", "note"])
    email_sends_schedule_many(sends=sends)
    return outcomes
