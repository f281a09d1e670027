"""The surveys' due-time checks, registered with the email engine per purpose.

The engine calls each with a batch of due sends that passed its own rules (erased, suppressed,
bounced, unsubscribed, …) and skips those it answers for, with the reason. A few queries per
batch, never one per send.

- "survey": the campaign is still ready or active (else the dispatch is skipped as `paused`),
  and the contact had no other survey sent in the last SURVEY_CONTACT_LIMIT_HOURS (24), in
  this batch either (else `throttled`): the trigger-time rule already holds for due times, this
  catches surveys that a backlog brought together.
- "reminder": the survey was sent and not answered, and the campaign is live.
- "autoresponder": the response still fits the autoresponder (a detractor's is skipped if the
  score was raised, a no-comment one if a comment came).
"""

from __future__ import annotations

from django.db import transaction

from campaigns.surveys.models import (
    Autoresponder,
    AutoresponderKind,
    DispatchStatus,
    Reason,
    SurveyDispatch,
    SurveyResponse,
    parse_key,
)
from campaigns.surveys.rules import contact_limit
from campaigns.surveys.scales import HIGH, LOW, SCALES
from common import clock


def survey_send_check(sends: list) -> dict[int, str]:
    if not sends:
        return {}
    with transaction.atomic():
        return _survey_check(sends)


def _survey_check(sends: list) -> dict[int, str]:
    ids = {send.pk: (parse_key(send.key) or (None, "", 0))[0] for send in sends}
    dispatches = {
        d.pk: d
        for d in SurveyDispatch.objects.filter(pk__in={i for i in ids.values() if i})
        .select_related("campaign")
        .select_for_update(of=("self",))
    }
    now = clock.now()
    limit = contact_limit()
    surveyed: dict[int, object] = {}
    if limit:
        contact_ids = {d.contact_id for d in dispatches.values() if d.contact_id}
        for contact_id, sent_at in (
            SurveyDispatch.objects.filter(
                contact_id__in=contact_ids,
                status__in=(DispatchStatus.SENT, DispatchStatus.RESPONDED),
                sent_at__gt=now - limit,
            )
            .exclude(pk__in=list(dispatches))
            .values_list("contact_id", "sent_at")
        ):
            surveyed[contact_id] = max(sent_at, surveyed.get(contact_id, sent_at))
    skips: dict[int, str] = {}
    changed = []
    for send in sorted(sends, key=lambda s: (s.due_at, s.pk)):
        dispatch = dispatches.get(ids[send.pk])
        if dispatch is None:
            skips[send.pk] = "survey deleted"
            continue
        if dispatch.status != DispatchStatus.SCHEDULED:
            if dispatch.status == DispatchStatus.SKIPPED:
                skips[send.pk] = f"{dispatch.reason}: {dispatch.note}" if dispatch.note else dispatch.reason
            continue  # sent before (a staff retry): the engine's own guard decides
        if not dispatch.campaign.live:
            reason, note = Reason.PAUSED, f"campaign {dispatch.campaign.status} when the survey was due"
        elif limit and dispatch.contact_id in surveyed:
            hours = limit.total_seconds() / 3600
            reason = Reason.THROTTLED
            note = f"another survey was sent within {hours:g} hours (at most one per {hours:g} hours per contact)"
        else:
            if limit and dispatch.contact_id:
                surveyed[dispatch.contact_id] = now
            continue
        dispatch.status, dispatch.reason, dispatch.note = DispatchStatus.SKIPPED, reason, note[:300]
        changed.append(dispatch)
        skips[send.pk] = f"{reason}: {note}"[:500]
    if changed:
        SurveyDispatch.objects.bulk_update(changed, ["status", "reason", "note"])
    return skips


def reminder_send_check(sends: list) -> dict[int, str]:
    if not sends:
        return {}
    ids = {send.pk: (parse_key(send.key) or (None, "", 0))[0] for send in sends}
    dispatches = {
        d.pk: d for d in SurveyDispatch.objects.filter(pk__in={i for i in ids.values() if i}).select_related("campaign")
    }
    skips: dict[int, str] = {}
    for send in sends:
        dispatch = dispatches.get(ids[send.pk])
        if dispatch is None:
            skips[send.pk] = "survey deleted"
        elif dispatch.status == DispatchStatus.RESPONDED:
            skips[send.pk] = "responded"
        elif dispatch.status != DispatchStatus.SENT:
            skips[send.pk] = f"survey not sent ({dispatch.status})"
        elif not dispatch.campaign.live:
            skips[send.pk] = f"campaign {dispatch.campaign.status}"
    return skips


def autoresponder_key(response_id: int, kind: str) -> str:
    return f"survey:response:{response_id}:autoresponder:{kind}"


def parse_autoresponder_key(key: str) -> tuple[int, str] | None:
    parts = (key or "").split(":")
    if len(parts) != 5 or parts[:2] != ["survey", "response"] or parts[3] != "autoresponder":
        return None
    try:
        return int(parts[2]), parts[4]
    except ValueError:
        return None


def applies(kind: str, *, metric: str, score: int, comment: str) -> bool:
    level = SCALES[metric].level(score)
    if kind == AutoresponderKind.DETRACTOR:
        return level == LOW
    if kind == AutoresponderKind.PROMOTER:
        return level == HIGH
    if kind == AutoresponderKind.NO_COMMENT:
        return not comment.strip()
    return False


def autoresponder_send_check(sends: list) -> dict[int, str]:
    if not sends:
        return {}
    keys = {send.pk: parse_autoresponder_key(send.key) for send in sends}
    responses = {
        r.pk: r
        for r in SurveyResponse.objects.filter(pk__in={k[0] for k in keys.values() if k}).select_related("campaign")
    }
    enabled = set(
        Autoresponder.objects.filter(
            campaign_id__in={r.campaign_id for r in responses.values()}, enabled=True
        ).values_list("campaign_id", "kind")
    )
    skips: dict[int, str] = {}
    for send in sends:
        parsed = keys[send.pk]
        response = responses.get(parsed[0]) if parsed else None
        if response is None:
            skips[send.pk] = "response deleted"
            continue
        kind = parsed[1]
        if (response.campaign_id, kind) not in enabled:
            skips[send.pk] = "autoresponder disabled"
        elif not applies(kind, metric=response.campaign.metric, score=response.score, comment=response.comment):
            skips[send.pk] = f"no longer applies: the answer is now {response.score}" + (
                " with a comment" if response.comment.strip() else ""
            )
    return skips
