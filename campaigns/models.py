# Models live in each feature's package; importing them here lets Django find them under the
# "campaigns" app label.
from campaigns.email.models import EmailEvent, EmailRateWindow, EmailSend, EmailTemplate
from campaigns.loops.models import Enrolment, Loop, LoopDay, LoopStep
from campaigns.notifications.models import NotificationItem, NotificationRule
from campaigns.surveys.models import (
    Autoresponder,
    Campaign,
    CampaignReminder,
    SurveyCount,
    SurveyDispatch,
    SurveyResponse,
)
from campaigns.webhooks.models import Delivery, WebhookSubscription

__all__ = [
    "Autoresponder",
    "Campaign",
    "CampaignReminder",
    "Delivery",
    "EmailEvent",
    "EmailRateWindow",
    "EmailSend",
    "EmailTemplate",
    "Enrolment",
    "Loop",
    "LoopDay",
    "LoopStep",
    "NotificationItem",
    "NotificationRule",
    "SurveyCount",
    "SurveyDispatch",
    "SurveyResponse",
    "WebhookSubscription",
]
