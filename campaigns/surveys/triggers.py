"""Triggers: what a drained chunk's events do to the survey campaigns.

contacts.signals.events_recorded brings a chunk's tracks (or one app event) in one call.
`survey_events_apply` reads the live campaigns (ready or active) once, matches names and
integrations in memory, and only when something matches reads, one query each: dispatches
already made for these triggers (a re-run chunk), the contacts, their suppressions, and their
recent surveys. The rules (campaigns.surveys.rules) run in memory; every trigger becomes a
dispatch row, inserted in one statement, and those that send get their survey email scheduled
through the email engine in one more (key `survey:<dispatch id>`, so never twice). It runs
inside the drain's transaction: a rolled-back chunk surveys nobody.

The Promoter kind refuses a track whose userId was never identified before any event is
recorded; it reports those triggers through `dispatches_not_identified`, which records them
for the matching campaigns with the reason `not_identified`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q

from campaigns.audience import Audience
from campaigns.email.services import email_sends_schedule_many
from campaigns.surveys.links import survey_context, survey_token
from campaigns.surveys.models import (
    LIVE_STATUSES,
    SURVEYING,
    Campaign,
    CampaignStatus,
    DispatchStatus,
    Reason,
    SurveyDispatch,
    send_key,
)
from campaigns.surveys.rules import History, contact_limit, refusal
from common import clock
from common.bulk import bulk_insert
from contacts.hashing import email_md5
from contacts.models import Contact, Suppression
from contacts.signals import RecordedEvent

CONTACT_FIELDS = ("id", "email", "user_id", "first_name", "last_name", "properties", "subscribed")


@dataclass
class Applied:
    """What one call did, for tests and logs."""

    scheduled: list[SurveyDispatch] = field(default_factory=list)
    skipped: list[SurveyDispatch] = field(default_factory=list)


def live_campaigns() -> list[Campaign]:
    return list(Campaign.objects.filter(status__in=LIVE_STATUSES).select_related("template").order_by("pk"))


def event_json(name: str, properties: dict, timestamp: datetime) -> dict:
    return {"name": name, "properties": properties, "timestamp": timestamp.isoformat()}


@transaction.atomic
def survey_events_apply(*, events: list[RecordedEvent]) -> Applied:
    applied = Applied()
    if not events:
        return applied
    names = {e.name for e in events}
    campaigns = [c for c in live_campaigns() if names.intersection(c.trigger_events)]
    if not campaigns:
        return applied
    pairs = [
        (event, campaign)
        for event in sorted(events, key=lambda e: (e.timestamp, e.event_id))
        for campaign in campaigns
        if event.name in campaign.trigger_events
        and (campaign.integration_id is None or campaign.integration_id == event.integration_id)
    ]
    if not pairs:
        return applied
    now = clock.now()
    _activate({campaign.pk for _event, campaign in pairs}, now)
    triggers = {f"event:{event.event_id}" for event, _campaign in pairs}
    done = set(
        SurveyDispatch.objects.filter(trigger__in=triggers, campaign_id__in={c.pk for c in campaigns}).values_list(
            "campaign_id", "trigger"
        )
    )
    pairs = [(e, c) for e, c in pairs if (c.pk, f"event:{e.event_id}") not in done]
    if not pairs:
        return applied
    contact_ids = {event.contact_id for event, _campaign in pairs}
    contacts = Contact.objects.only(*CONTACT_FIELDS).in_bulk(contact_ids)
    suppressed = suppressions_of(contacts.values())
    history = recent_surveys(contact_ids, since=min(e.timestamp for e, _c in pairs) - _window(campaigns))
    audiences = {campaign.pk: Audience(campaign.audience) for campaign in campaigns}

    rows: list[SurveyDispatch] = []
    for event, campaign in pairs:
        contact = contacts.get(event.contact_id)
        at = event.timestamp + campaign.delay
        why = refusal(
            campaign,
            audience=audiences[campaign.pk],
            contact=contact,
            suppression=suppressed.get(event.contact_id),
            history=history,
            at=at,
            sample_key=(str(event.contact_id), event.name, event.timestamp),
        )
        dispatch = SurveyDispatch(
            campaign=campaign,
            contact_id=event.contact_id if contact is not None else None,
            user_id=(contact.user_id or "") if contact is not None else "",
            trigger=f"event:{event.event_id}",
            event=event_json(event.name, event.properties, event.timestamp),
            event_at=event.timestamp,
            created_at=now,
        )
        if why is None:
            dispatch.status, dispatch.due_at = DispatchStatus.SCHEDULED, at
            dispatch._contact = contact
            history.add(contact.pk, campaign.pk, at)
            applied.scheduled.append(dispatch)
        else:
            dispatch.status, dispatch.reason, dispatch.note = DispatchStatus.SKIPPED, why.reason, why.note[:300]
            applied.skipped.append(dispatch)
        rows.append(dispatch)
    bulk_insert(SurveyDispatch, rows)  # one statement; sets the pks the send keys need
    surveys_schedule(applied.scheduled)
    return applied


def surveys_schedule(dispatches: list[SurveyDispatch]) -> int:
    """Each scheduled dispatch's survey email, in one insert (its key makes it once)."""
    return email_sends_schedule_many(
        sends=[
            {
                "contact": dispatch._contact,
                "template": dispatch.campaign.template,
                "purpose": "survey",
                "due_at": dispatch.due_at,
                "key": send_key(dispatch.pk),
                "event": dispatch.event,
                "extra_context": {"survey": context_for(dispatch)},
                "reply_to": dispatch.campaign.reply_to,
                "origin": f"survey {dispatch.campaign.name!r}"[:200],
            }
            for dispatch in dispatches
        ]
    )


def context_for(dispatch: SurveyDispatch) -> dict:
    campaign = dispatch.campaign
    token = survey_token(dispatch_id=dispatch.pk, due_at=dispatch.due_at)
    return survey_context(scale=campaign.scale, question=campaign.question, campaign_id=campaign.pk, token=token)


def _activate(campaign_ids: set[int], now: datetime) -> None:
    """Ready → active on the first matching event (Promoter)."""
    Campaign.objects.filter(pk__in=campaign_ids, status=CampaignStatus.READY).update(
        status=CampaignStatus.ACTIVE, first_event_at=now, updated_at=now
    )


def _window(campaigns: Iterable[Campaign]) -> timedelta:
    """How far back the rules look: the longest of the campaigns' windows and the daily limit."""
    days = max([c.throttle_days or 0 for c in campaigns] + [c.not_surveyed_days or 0 for c in campaigns])
    return max(timedelta(days=days), contact_limit())


def recent_surveys(contact_ids: Iterable[int], *, since: datetime) -> History:
    """The contacts' surveys (scheduled, sent or answered) from `since` on, in one query."""
    history = History()
    ids = list(contact_ids)
    if not ids:
        return history
    rows = (
        SurveyDispatch.objects.filter(contact_id__in=ids, status__in=SURVEYING)
        .filter(Q(due_at__gte=since) | Q(sent_at__gte=since))
        .values_list("contact_id", "campaign_id", "due_at", "sent_at")
    )
    for contact_id, campaign_id, due_at, sent_at in rows:
        history.add(contact_id, campaign_id, sent_at or due_at)
    return history


def suppressions_of(contacts: Iterable[Contact]) -> dict[int, str]:
    """{contact id: the reason of a suppression of their address or userId}, in one query.
    An erasure, bounce or complaint wins over an unsubscribe."""
    contacts = list(contacts)
    by_md5 = {email_md5(c.email): c.pk for c in contacts if c.email}
    by_user = {c.user_id: c.pk for c in contacts if c.user_id}
    if not by_md5 and not by_user:
        return {}
    found: dict[int, str] = {}
    rows = Suppression.objects.filter(Q(email_md5__in=list(by_md5)) | Q(user_id__in=list(by_user))).values_list(
        "email_md5", "user_id", "reason"
    )
    for md5, user_id, reason in rows:
        for pk in (by_md5.get(md5), by_user.get(user_id)):
            if pk is not None and found.get(pk) in (None, "unsubscribed"):
                found[pk] = reason
    return found


# --- the Promoter kind's refused triggers ---------------------------------------------------------
@dataclass(frozen=True)
class Unidentified:
    """A track the Promoter kind refused: no userId, or one nobody identified before."""

    inbox_id: int
    user_id: str
    name: str
    properties: dict
    timestamp: datetime


def dispatches_not_identified(*, integration_id: int, triggers: list[Unidentified]) -> int:
    """Record, for each live campaign the track matches, a dispatch skipped as `not_identified`.
    One insert for the chunk; a re-run chunk adds nothing (one row per inbox message and
    campaign). Returns how many rows it tried to add."""
    if not triggers:
        return 0
    names = {t.name for t in triggers}
    campaigns = [
        c
        for c in live_campaigns()
        if names.intersection(c.trigger_events) and c.integration_id in (None, integration_id)
    ]
    if not campaigns:
        return 0
    now = clock.now()
    rows = [
        SurveyDispatch(
            campaign=campaign,
            contact=None,
            user_id=trigger.user_id[:255],
            trigger=f"inbox:{trigger.inbox_id}",
            event=event_json(trigger.name, trigger.properties, trigger.timestamp),
            event_at=trigger.timestamp,
            status=DispatchStatus.SKIPPED,
            reason=Reason.NOT_IDENTIFIED,
            note=(
                f"userId {trigger.user_id!r} was not identified before"
                if trigger.user_id
                else "the track has no userId"
            )[:300],
            created_at=now,
        )
        for trigger in triggers
        for campaign in campaigns
        if trigger.name in campaign.trigger_events
    ]
    bulk_insert(SurveyDispatch, rows, ignore_conflicts=True)
    return len(rows)
