"""Staff writes on campaigns: save (with reminders), activate, pause; the checks behind them.

Activation (draft or paused → ready) asks for what a survey cannot go without, each a code
the admin and the API both show:
- `no_logo`: the survey template has no logo (Retently will not use a template without the
  company's logo, and neither do we);
- `no_scale`: the template does not show the score links ({{ event.survey.scale_html|safe }}
  or a loop over event.survey.links), so the email could not be answered;
- `no_trigger_events`: no event would ever trigger it.
A ready campaign becomes active on its first matching event (campaigns.surveys.triggers).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from campaigns.email.models import EmailTemplate
from campaigns.loops.models import Delayed
from campaigns.surveys.models import (
    LIVE_STATUSES,
    Campaign,
    CampaignReminder,
    CampaignStatus,
)
from common import clock

MAX_REMINDERS = 5
CAMPAIGN_FIELDS = (
    "name",
    "metric",
    "integration",
    "trigger_events",
    "template",
    "question",
    "contact_list",
    "reply_to",
    "audience",
    "not_surveyed_days",
    "sample_percent",
    "throttle_days",
)


class CampaignProblem(Exception):
    """What stops a campaign: a stable `code`, a message naming what is missing, and its field."""

    def __init__(self, code: str, message: str, field: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


def template_problem(template: EmailTemplate | None) -> CampaignProblem | None:
    """Why this template cannot carry a survey, or None."""
    if template is None:
        return CampaignProblem("no_template", "the campaign has no survey template", "template")
    if not (template.logo_url or "").strip():
        return CampaignProblem(
            "no_logo",
            f"the survey template {template.name!r} has no logo: set its logo URL (the company logo) first",
            "template",
        )
    if "event.survey.scale_html" not in template.html and "event.survey.links" not in template.html:
        return CampaignProblem(
            "no_scale",
            f"the survey template {template.name!r} does not show the score links: put "
            "{{ event.survey.scale_html|safe }} (or a loop over event.survey.links) in its HTML",
            "template",
        )
    return None


def activation_problem(campaign: Campaign) -> CampaignProblem | None:
    problem = template_problem(campaign.template if campaign.template_id else None)
    if problem is not None:
        return problem
    if not campaign.trigger_events:
        return CampaignProblem(
            "no_trigger_events", "the campaign has no trigger event: name the events that send it", "trigger_events"
        )
    return None


@transaction.atomic
def campaign_activate(*, campaign: Campaign) -> Campaign:
    """Draft or paused → ready (already ready or active: unchanged). Raises CampaignProblem."""
    campaign = Campaign.objects.select_for_update().select_related("template").get(pk=campaign.pk)
    if campaign.status in LIVE_STATUSES:
        return campaign
    problem = activation_problem(campaign)
    if problem is not None:
        raise problem
    now = clock.now()
    campaign.status, campaign.activated_at, campaign.updated_at = CampaignStatus.READY, now, now
    campaign.save(update_fields=["status", "activated_at", "updated_at"])
    return campaign


@transaction.atomic
def campaign_pause(*, campaign: Campaign) -> Campaign:
    """Ready or active → paused: no new surveys; those due while paused are skipped (`paused`)."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status == CampaignStatus.DRAFT:
        raise CampaignProblem("draft", "a draft campaign is not running: there is nothing to pause", "status")
    if campaign.status != CampaignStatus.PAUSED:
        campaign.status, campaign.updated_at = CampaignStatus.PAUSED, clock.now()
        campaign.save(update_fields=["status", "updated_at"])
    return campaign


@transaction.atomic
def campaign_save(
    *,
    campaign: Campaign | None = None,
    delay_minutes: int | None = None,
    reminders: list[dict] | None = None,
    **fields: Any,
) -> Campaign:
    """Create or change a campaign. `reminders`, when given, replace its reminders
    ([{delay_minutes, template}], at most 5). A live campaign keeps a usable template."""
    unknown = set(fields) - set(CAMPAIGN_FIELDS)
    if unknown:
        raise TypeError(f"campaign_save() got unknown fields: {', '.join(sorted(unknown))}")
    now = clock.now()
    campaign = campaign or Campaign(created_at=now)
    for name, value in fields.items():
        setattr(campaign, name, value)
    if delay_minutes is not None:
        campaign.delay_value, campaign.delay_unit = Delayed.split_minutes(int(delay_minutes))
    if campaign.status in LIVE_STATUSES and "template" in fields:
        problem = template_problem(campaign.template)
        if problem is not None:
            raise problem
    campaign.updated_at = now
    campaign.save()
    if reminders is not None:
        reminders_set(campaign=campaign, reminders=reminders)
    return campaign


def reminders_set(*, campaign: Campaign, reminders: list[dict]) -> list[CampaignReminder]:
    if len(reminders) > MAX_REMINDERS:
        raise CampaignProblem("too_many_reminders", f"at most {MAX_REMINDERS} reminders", "reminders")
    existing = {r.position: r for r in campaign.reminders.all()}
    kept = []
    for position, data in enumerate(reminders, start=1):
        value, unit = Delayed.split_minutes(int(data["delay_minutes"]))
        reminder = existing.pop(position, None) or CampaignReminder(campaign=campaign, position=position)
        reminder.delay_value, reminder.delay_unit, reminder.template = value, unit, data["template"]
        reminder.save()
        kept.append(reminder)
    if existing:
        CampaignReminder.objects.filter(pk__in=[r.pk for r in existing.values()]).delete()
    return kept
