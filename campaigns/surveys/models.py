"""Survey campaigns (Retently's transactional campaigns, Promoter's Segment campaigns).

A Campaign surveys a contact when one of its trigger events is recorded on them. Each matching
trigger is one SurveyDispatch, whether it sends or not: a skipped one names its reason. A
dispatch that sends is one EmailSend of the email engine (purpose "survey", key
`survey:<dispatch id>`), and its reminders are more sends (`survey:<id>:reminder:<n>`), each
checked again when due (campaigns.surveys.checks). Answering the survey's page makes one
SurveyResponse per dispatch; answering again changes it.

SurveyCount keeps the raw figures per campaign and UTC day: surveys sent, and responses per
score, written by the statements that change them. Every metric is computed from them
(campaigns.surveys.scales).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from campaigns.loops.models import Delayed, DelayUnit
from campaigns.surveys.scales import SCALES, scale_of
from common import clock
from common.fields import JSONField
from common.workqueue.models import WorkItem, due_index


class Metric(models.TextChoices):
    NPS = "nps", "NPS (0–10)"
    CSAT = "csat", "CSAT (1–5)"
    CES = "ces", "CES (1–7)"
    FIVE_STAR = "five_star", "5-star (1–5)"


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "draft"
    READY = "ready", "ready (waiting for its first event)"
    ACTIVE = "active", "active"
    PAUSED = "paused", "paused"


LIVE_STATUSES = (CampaignStatus.READY, CampaignStatus.ACTIVE)


def delay_text(value: int, unit: str) -> str:
    if not value:
        return "at once"
    return f"{value} {unit[:-1] if value == 1 else unit}"


class Campaign(Delayed, models.Model):
    name = models.CharField(max_length=200, unique=True)
    metric = models.CharField(max_length=10, choices=Metric.choices, default=Metric.NPS)
    status = models.CharField(max_length=8, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    integration = models.ForeignKey(
        "integrations.Integration",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Only events from this inbound integration trigger it; empty: any.",
    )
    trigger_events = JSONField(
        default=list, blank=True, help_text="Track event names that trigger a survey (exact match)."
    )
    template = models.ForeignKey(
        "campaigns.EmailTemplate",
        on_delete=models.PROTECT,
        related_name="survey_campaigns",
        help_text="The survey email. It needs the company logo (its logo URL) and the scale: "
        "{{ event.survey.scale_html|safe }}, or a loop over event.survey.links.",
    )
    question = models.CharField(
        max_length=500, blank=True, help_text="Shown in the email ({{ event.survey.question }}) and on the page."
    )
    contact_list = models.ForeignKey(
        "contacts.MailingList",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Contacts surveyed are added to this list.",
    )
    reply_to = models.EmailField(max_length=320, blank=True, help_text="Replies to the survey email go here.")
    audience = JSONField(default=dict, blank=True, help_text="Audience conditions, checked at the trigger.")
    not_surveyed_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Only contacts no campaign surveyed in the last N days; empty: off."
    )
    sample_percent = models.PositiveSmallIntegerField(
        default=100, help_text="The percent of triggers that get a survey (decided per message, the same on replay)."
    )
    delay_value = models.PositiveIntegerField(default=0, help_text="After the trigger event; 0: at once.")
    delay_unit = models.CharField(max_length=8, choices=DelayUnit.choices, default=DelayUnit.MINUTES)
    throttle_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="No new survey in this campaign for N days after the last one; empty: off."
    )
    activated_at = models.DateTimeField(null=True, blank=True)
    first_event_at = models.DateTimeField(null=True, blank=True, help_text="When it became active.")
    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def scale(self):
        return scale_of(self.metric)

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES


class CampaignReminder(Delayed, models.Model):
    """A reminder to someone who has not answered, a delay after the survey email was sent."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="reminders")
    position = models.PositiveSmallIntegerField(help_text="1 is the first reminder.")
    delay_value = models.PositiveIntegerField(default=3, help_text="After the survey email was sent.")
    delay_unit = models.CharField(max_length=8, choices=DelayUnit.choices, default=DelayUnit.DAYS)
    template = models.ForeignKey("campaigns.EmailTemplate", on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["campaign", "position"]
        constraints = [models.UniqueConstraint(fields=["campaign", "position"], name="surveyreminder_position")]

    def __str__(self) -> str:
        return f"reminder {self.position}, {delay_text(self.delay_value, self.delay_unit)} after the survey"


class AutoresponderKind(models.TextChoices):
    DETRACTOR = "detractor", "detractors (the low scores)"
    PROMOTER = "promoter", "promoters (the high scores)"
    NO_COMMENT = "no_comment", "respondents who left no comment"


class Autoresponder(models.Model):
    """An email to a respondent a random 5–60 minutes after they answered. At most one per
    response: a detractor's or promoter's autoresponder goes before the no-comment one."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="autoresponders")
    kind = models.CharField(max_length=12, choices=AutoresponderKind.choices)
    template = models.ForeignKey("campaigns.EmailTemplate", on_delete=models.PROTECT, related_name="+")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["campaign", "kind"]
        constraints = [models.UniqueConstraint(fields=["campaign", "kind"], name="autoresponder_kind")]

    def __str__(self) -> str:
        return f"autoresponder to {self.get_kind_display()}"


class DispatchStatus(models.TextChoices):
    SCHEDULED = "scheduled", "scheduled"
    SENT = "sent", "sent"
    SKIPPED = "skipped", "skipped"
    RESPONDED = "responded", "responded"


class Reason(models.TextChoices):
    """Why a trigger sent no survey (CONTRACT.md): the first seven; `paused` and `failed` are
    what happens to a survey due while its campaign is paused or whose email failed."""

    NOT_IDENTIFIED = "not_identified", "not identified (Promoter: userId unknown)"
    FILTERED = "filtered", "filtered (audience, or no address)"
    SAMPLED_OUT = "sampled_out", "sampled out"
    THROTTLED = "throttled", "throttled"
    RECENTLY_SURVEYED = "recently_surveyed", "recently surveyed"
    SUPPRESSED = "suppressed", "suppressed (erased, bounced, complained, uploaded)"
    UNSUBSCRIBED = "unsubscribed", "unsubscribed"
    PAUSED = "paused", "campaign paused"
    FAILED = "failed", "email failed"


# Statuses of a dispatch that surveys (or will survey) its contact: the throttles count them.
SURVEYING = (DispatchStatus.SCHEDULED, DispatchStatus.SENT, DispatchStatus.RESPONDED)


class SurveyDispatch(WorkItem):
    """One matching trigger of a campaign, and what became of it.

    A dispatch that passes the trigger's rules is a work-queue row (the "survey_dispatch" type)
    due at its survey's time; then it is checked again (campaign still live, the daily limit)
    and hands its email to the engine. Skipped at the trigger, it is never queued. The queue
    writes only its own fields: the status is the surveys' to write (a dispatch handed to the
    engine may be marked sent by another worker before its batch is finished).
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="dispatches", db_index=False)
    contact = models.ForeignKey(
        "contacts.Contact",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="survey_dispatches",
        db_index=False,
    )
    user_id = models.CharField(max_length=255, blank=True, help_text="The userId of a trigger nobody identified.")
    # "event:<ContactEvent id>", or "inbox:<inbox message id>" for a trigger with no contact:
    # one dispatch per trigger and campaign, so a re-drained chunk adds nothing.
    trigger = models.CharField(max_length=40)
    event = JSONField(default=dict, blank=True, help_text="The trigger event: name, properties, timestamp.")
    event_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=DispatchStatus.choices, default=DispatchStatus.SCHEDULED)
    reason = models.CharField(max_length=20, choices=Reason.choices, blank=True)
    note = models.CharField(max_length=300, blank=True, help_text="The detail of the reason.")
    due_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    responded_at = models.DateTimeField(null=True, blank=True)
    # The work done once the survey went out (reminders, the contact list, last_surveyed_at,
    # the sent figure), in bulk by the "surveys" runner.
    followed_up = models.BooleanField(default=True)
    opens = JSONField(default=list, blank=True, help_text="Score links opened: [score, time] pairs.")
    scanner = models.BooleanField(default=False, help_text="Every score was opened within a second: a link scanner.")
    created_at = models.DateTimeField(default=clock.now)

    class Meta(WorkItem.Meta):
        verbose_name_plural = "survey dispatches"
        constraints = [models.UniqueConstraint(fields=["campaign", "trigger"], name="dispatch_campaign_trigger")]
        indexes = [
            due_index("campaigns_surveydispatch_due"),
            # The throttles: a contact's recent surveys, any campaign. Serves the contact FK.
            models.Index(fields=["contact", "-due_at"], name="dispatch_contact_due"),
            # Lists newest first, by campaign or by status.
            models.Index(fields=["campaign", "-id"], name="dispatch_campaign"),
            models.Index(fields=["status", "-id"], name="dispatch_status"),
            # The runner: sent surveys whose follow-up is pending, and overdue scheduled ones.
            models.Index(fields=["id"], name="dispatch_follow_up", condition=Q(followed_up=False)),
            models.Index(fields=["due_at"], name="dispatch_waiting", condition=Q(status="scheduled")),
        ]

    def __str__(self) -> str:
        return f"survey {self.pk} ({self.status}{': ' + self.reason if self.reason else ''})"

    @property
    def send_key(self) -> str:
        return send_key(self.pk)

    def reminder_key(self, position: int) -> str:
        return f"{send_key(self.pk)}:reminder:{position}"


def send_key(dispatch_id: int) -> str:
    return f"survey:{dispatch_id}"


def parse_key(key: str) -> tuple[int, str, int] | None:
    """(dispatch id, "survey" | "reminder", position) of a survey's send key; None for others."""
    parts = (key or "").split(":")
    try:
        if len(parts) == 2 and parts[0] == "survey":
            return int(parts[1]), "survey", 0
        if len(parts) == 4 and parts[0] == "survey" and parts[2] == "reminder":
            return int(parts[1]), "reminder", int(parts[3])
    except ValueError:
        return None
    return None


class ResponseVia(models.TextChoices):
    SCRIPT = "script", "the page's script"
    FORM = "form", "the page's button"
    STAFF = "staff", "staff"


class SurveyResponse(models.Model):
    """A contact's answer to one survey: one per dispatch; answering again changes it."""

    dispatch = models.OneToOneField(SurveyDispatch, on_delete=models.CASCADE, related_name="response")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="responses", db_index=False)
    contact = models.ForeignKey(
        "contacts.Contact",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="survey_responses",
        db_index=False,
    )
    email = models.CharField(max_length=320, blank=True)
    score = models.SmallIntegerField()
    category = models.CharField(max_length=12)
    comment = models.TextField(blank=True)
    via = models.CharField(max_length=8, choices=ResponseVia.choices, default=ResponseVia.FORM)
    scanner = models.BooleanField(
        default=False, help_text="Its survey's links were all opened within a second: perhaps a link scanner."
    )
    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        indexes = [
            models.Index(fields=["campaign", "-created_at"], name="response_campaign"),
            models.Index(fields=["contact", "-created_at"], name="response_contact"),
            models.Index(fields=["-created_at"], name="response_created"),
        ]

    def __str__(self) -> str:
        return f"{self.score} ({self.category})"

    @property
    def level(self) -> str:
        return SCALES[self.campaign.metric].level(self.score)


class SurveyCount(models.Model):
    """A campaign's raw figures for one UTC day: `key` is "sent", or a score ("0" … "10") with
    the responses that gave it (a changed answer moves its count from one score to the other)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="counts", db_index=False)
    day = models.DateField()
    key = models.CharField(max_length=8)
    n = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "day", "key"], name="surveycount_unique")]

    def __str__(self) -> str:
        return f"{self.campaign_id} {self.day} {self.key}: {self.n}"
