"""Triggers: what a drained chunk's events do to the survey campaigns.

contacts.signals.events_recorded brings a chunk's tracks (or one app event) in one call.
`survey_events_apply` reads the live campaigns (ready or active) once, matches names and
integrations in memory, and only when something matches reads, one query each: the contacts,
their suppressions and their recent surveys. The rules (campaigns.surveys.rules) run in
memory; every trigger becomes a dispatch row, all inserted in one statement (a re-run chunk's
rows are already there and are left alone: one dispatch per trigger and campaign). Those that
survey are work-queue rows due at the survey's time (campaigns.surveys.dispatching makes the
email then), so the drain pays for one insert. It runs inside the drain's transaction: a
rolled-back chunk surveys nobody.

The Promoter kind refuses a track whose userId was never identified before any event is
recorded; it reports those triggers through `dispatches_not_identified`, which records them
for the matching campaigns with the reason `not_identified`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction

from campaigns.audience import Audience
from campaigns.surveys import fastpath
from campaigns.surveys.dispatching import WORK_TYPE
from campaigns.surveys.models import (
    LIVE_STATUSES,
    SURVEYING,
    Campaign,
    CampaignStatus,
    DispatchStatus,
    Reason,
    SurveyDispatch,
)
from campaigns.surveys.rules import History, contact_limit, refusal
from common import clock
from common.bulk import bulk_insert
from common.workqueue import kick_on_commit
from contacts.hashing import email_md5
from contacts.signals import RecordedEvent


@dataclass
class Applied:
    """What one call did, for tests and logs."""

    scheduled: int = 0
    skipped: int = 0


def live_campaigns() -> list[Campaign]:
    return list(Campaign.objects.filter(status__in=LIVE_STATUSES).select_related("template").order_by("pk"))


def event_json(name: str, properties: dict, timestamp: datetime) -> dict:
    return {"name": name, "properties": properties, "timestamp": timestamp.isoformat()}


COLUMNS = (
    "campaign_id",
    "contact_id",
    "user_id",
    "trigger",
    "event",
    "event_at",
    "status",
    "reason",
    "note",
    "due_at",
    "next_attempt_at",
)


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
    contact_ids = sorted({event.contact_id for event, _campaign in pairs})
    contacts = fastpath.contacts_read(contact_ids)
    suppressed = suppressions_of(contacts.values())
    history = recent_surveys(contact_ids, since=min(e.timestamp for e, _c in pairs) - _window(campaigns))
    audiences = {campaign.pk: Audience(campaign.audience) for campaign in campaigns}

    columns: dict[str, list] = {name: [] for name in COLUMNS}
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
        if why is None:
            history.add(contact.pk, campaign.pk, at)
            status, reason, note, due = DispatchStatus.SCHEDULED, "", "", at
            applied.scheduled += 1
        else:
            status, reason, note, due = DispatchStatus.SKIPPED, why.reason, why.note[:300], None
            applied.skipped += 1
        for name, value in (
            ("campaign_id", campaign.pk),
            ("contact_id", event.contact_id if contact is not None else None),
            ("user_id", (contact.user_id or "") if contact is not None else ""),
            ("trigger", f"event:{event.event_id}"),
            ("event", event_json(event.name, event.properties, event.timestamp)),
            ("event_at", event.timestamp),
            ("status", status),
            ("reason", reason),
            ("note", note),
            ("due_at", due),
            ("next_attempt_at", due),
        ):
            columns[name].append(value)
    # One statement; a re-run chunk's triggers are there already and are left as they were.
    fastpath.insert_columns(SurveyDispatch, columns, defaults=SurveyDispatch(created_at=now))
    if applied.scheduled:
        kick_on_commit(WORK_TYPE)
    return applied


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
    rows = fastpath.surveys_read(SurveyDispatch, list(contact_ids), tuple(SURVEYING), since)
    for contact_id, campaign_id, due_at, sent_at in rows:
        history.add(contact_id, campaign_id, sent_at or due_at)
    return history


def suppressions_of(contacts: Iterable) -> dict[int, str]:
    """{contact id: the reason of a suppression of their address or userId}, in one query.
    An erasure, bounce or complaint wins over an unsubscribe."""
    contacts = list(contacts)
    by_md5 = {email_md5(c.email): c.pk for c in contacts if c.email}
    by_user = {c.user_id: c.pk for c in contacts if c.user_id}
    if not by_md5 and not by_user:
        return {}
    found: dict[int, str] = {}
    for md5, user_id, reason in fastpath.suppressions_read(list(by_md5), list(by_user)):
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
