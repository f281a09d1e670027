"""Answering a survey: one response per dispatch, changed (never doubled) by a later answer.

`response_record` is what the survey page calls, with the dispatch locked so two posts at once
(the page's script and its button) make one response. On the first answer:
- the dispatch is `responded` and its waiting reminders are skipped ("responded");
- the score and its category go on the contact (campaigns.surveys.results);
- the internal event "Survey Responded" is recorded on the contact (loops start from it);
- one autoresponder is scheduled a random 5–60 minutes later, if one applies (a detractor's or
  promoter's first, else the no-comment one; its due-time check skips it if it no longer fits);
- webhooks get `response.created`, notifications "new response" (and "detractor", "comment");
- survey_responded is sent, for apps above that want the response itself.
A changed answer moves the raw count from the old score to the new one, updates the contact,
and sends `response.updated`, a "comment" or "detractor" notification when that changed, and
survey_responded with created=False.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction

from campaigns.email.services import email_send_schedule, email_sends_cancel
from campaigns.notifications.services import notify
from campaigns.surveys.checks import applies, autoresponder_key
from campaigns.surveys.models import (
    Autoresponder,
    AutoresponderKind,
    DispatchStatus,
    ResponseVia,
    SurveyDispatch,
    SurveyResponse,
)
from campaigns.surveys.results import response_result_set
from campaigns.surveys.scales import LOW, scale_of
from campaigns.surveys.signals import survey_responded
from campaigns.surveys.stats import Tally
from campaigns.webhooks.services import webhook_events_emit
from common import clock
from contacts.services import contact_event_record

MAX_REMINDERS = 5
AUTORESPONDER_MINUTES = (5, 60)
EVENT_NAME = "Survey Responded"


class ResponseError(ValueError):
    """A response that cannot be recorded (a score outside the scale), naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Recorded:
    response: SurveyResponse
    created: bool
    changed: set[str]
    old_level: str | None = None


def response_data(response: SurveyResponse) -> dict:
    """A response as webhooks carry it."""
    campaign = response.campaign
    return {
        "id": response.pk,
        "survey_id": response.dispatch_id,
        "campaign": campaign.pk,
        "campaign_name": campaign.name,
        "metric": campaign.metric,
        "contact": response.contact_id,
        "email": response.email,
        "score": response.score,
        "category": response.category,
        "comment": response.comment,
        "created_at": response.created_at.isoformat(),
        "updated_at": response.updated_at.isoformat(),
    }


def event_properties(response: SurveyResponse) -> dict:
    campaign = response.campaign
    return {
        "score": response.score,
        "category": response.category,
        "metric": campaign.metric,
        "campaign": campaign.pk,
        "campaign_name": campaign.name,
        "comment": response.comment,
        "survey_id": response.dispatch_id,
        "response_id": response.pk,
    }


@transaction.atomic
def response_record(
    *, dispatch_id: int, score: int, comment: str | None = None, via: str = ResponseVia.FORM
) -> Recorded:
    """Record or change the answer to one survey. `comment` None keeps the one given before.
    Raises SurveyDispatch.DoesNotExist, or ResponseError for a score outside the scale."""
    dispatch = (
        SurveyDispatch.objects.select_for_update(of=("self",)).select_related("campaign", "contact").get(pk=dispatch_id)
    )
    campaign = dispatch.campaign
    scale = scale_of(campaign.metric)
    if not scale.valid(score):
        raise ResponseError("score", f"score must be a whole number from {scale.low} to {scale.high}")
    # A NUL cannot be stored (PostgreSQL text); nobody types one on purpose.
    comment = None if comment is None else comment.replace("\x00", "").strip()[:5000]
    now = clock.now()
    response = SurveyResponse.objects.filter(dispatch=dispatch).select_related("campaign").first()
    tally = Tally()
    if response is None:
        response = SurveyResponse(
            dispatch=dispatch,
            campaign=campaign,
            contact=dispatch.contact,
            email=(dispatch.contact.email or "") if dispatch.contact else "",
            score=score,
            category=scale.category(score),
            comment=comment or "",
            via=via,
            scanner=dispatch.scanner,
            created_at=now,
            updated_at=now,
        )
        response.save()
        dispatch.status, dispatch.responded_at = DispatchStatus.RESPONDED, now
        dispatch.save(update_fields=["status", "responded_at"])
        tally.add(campaign.pk, score, day=now.date())
        tally.save()
        changed = {"score", "comment"} if response.comment else {"score"}
        result = Recorded(response, True, changed)
    else:
        old_score, old_comment, old_level = response.score, response.comment, scale.level(response.score)
        response.score, response.category = score, scale.category(score)
        if comment is not None:
            response.comment = comment
        changed = {
            name for name, old in (("score", old_score), ("comment", old_comment)) if getattr(response, name) != old
        }
        if not changed:
            return Recorded(response, False, set())
        response.via, response.updated_at = via, now
        response.scanner = response.scanner or dispatch.scanner
        response.save()
        if "score" in changed:
            day = response.created_at.date()
            tally.add(campaign.pk, old_score, -1, day=day)
            tally.add(campaign.pk, score, day=day)
            tally.save()
        result = Recorded(response, False, changed, old_level)
    _effects(dispatch, result)
    return result


def _first_answer(dispatch: SurveyDispatch, response: SurveyResponse) -> None:
    keys = [dispatch.reminder_key(n) for n in range(1, MAX_REMINDERS + 1)]
    email_sends_cancel(keys=keys, reason="responded")
    if dispatch.contact is not None:
        contact_event_record(
            contact=dispatch.contact,
            name=EVENT_NAME,
            properties=event_properties(response),
            timestamp=response.created_at,
        )
    _autoresponder_schedule(dispatch, response)


def _autoresponder_schedule(dispatch: SurveyDispatch, response: SurveyResponse) -> None:
    if dispatch.contact is None:
        return
    campaign = response.campaign
    found = {
        a.kind: a for a in Autoresponder.objects.filter(campaign=campaign, enabled=True).select_related("template")
    }
    order = (AutoresponderKind.DETRACTOR, AutoresponderKind.PROMOTER, AutoresponderKind.NO_COMMENT)
    chosen = next(
        (
            found[kind]
            for kind in order
            if kind in found and applies(kind, metric=campaign.metric, score=response.score, comment=response.comment)
        ),
        None,
    )
    if chosen is None:
        return
    delay = timedelta(minutes=random.randint(*AUTORESPONDER_MINUTES))  # noqa: S311 - a delay, not a secret
    email_send_schedule(
        contact=dispatch.contact,
        template=chosen.template,
        purpose="autoresponder",
        due_at=response.created_at + delay,
        key=autoresponder_key(response.pk, chosen.kind),
        event=dispatch.event,
        extra_context={
            "response": {"score": response.score, "category": response.category, "comment": response.comment},
            "autoresponder": chosen.kind,
        },
        reply_to=campaign.reply_to,
        origin=f"autoresponder ({chosen.kind}) of survey {campaign.name!r}"[:200],
    )


def _effects(dispatch: SurveyDispatch, result: Recorded) -> None:
    response = result.response
    campaign = response.campaign
    if "score" in result.changed:
        # Before the event: a loop's audience reads the contact's nps_category.
        response_result_set(
            contact_id=response.contact_id,
            metric=campaign.metric,
            score=response.score,
            category=response.category,
            actor=f"survey {campaign.name}"[:100],
        )
        if dispatch.contact is not None:
            dispatch.contact.refresh_from_db()
    if result.created:
        _first_answer(dispatch, response)
    webhook_events_emit(
        events=[("response.created" if result.created else "response.updated", response_data(response))]
    )
    who = response.email or (f"contact {response.contact_id}" if response.contact_id else "an erased contact")
    group = f"response:{response.pk}"
    notes = []
    if result.created:
        notes.append(("new_response", campaign.pk, group, f"{campaign.name}: {who} answered {response.score}."))
    was_low = result.old_level == LOW
    if "score" in result.changed and response.level == LOW and not was_low:
        notes.append(("detractor", campaign.pk, group, f"{campaign.name}: {who} is a detractor ({response.score})."))
    if "comment" in result.changed and response.comment:
        notes.append(("comment", campaign.pk, group, f"{campaign.name}: {who} commented: “{response.comment[:500]}”"))
    notify(notes=notes)
    survey_responded.send(
        sender=SurveyResponse,
        response=response,
        created=result.created,
        changed=set(result.changed),
        properties=event_properties(response),
    )
