"""Wire surveys, their webhooks and notifications in at start-up (CampaignsConfig.ready)."""

from __future__ import annotations


def ready() -> None:
    from campaigns.email.rules import register_send_check
    from campaigns.email.signals import email_bounced, email_sent
    from campaigns.surveys import receivers
    from campaigns.surveys.checks import autoresponder_send_check, reminder_send_check, survey_send_check
    from campaigns.surveys.dispatching import WORK_TYPE as DISPATCH
    from campaigns.surveys.dispatching import dispatches_due
    from campaigns.surveys.models import SurveyDispatch
    from campaigns.surveys.runner import surveys_run
    from campaigns.webhooks.models import Delivery
    from campaigns.webhooks.sending import deliver
    from campaigns.webhooks.services import WORK_TYPE
    from common.workqueue import STANDARD_WEBHOOKS, WorkType, register, register_runner
    from contacts.signals import contact_erased, contacts_merged, contacts_unsubscribed, events_recorded

    events_recorded.connect(receivers.on_events_recorded, dispatch_uid="surveys-events")
    email_sent.connect(receivers.on_email_sent, dispatch_uid="surveys-sent")
    email_bounced.connect(receivers.on_email_bounced, dispatch_uid="surveys-bounced")
    contacts_unsubscribed.connect(receivers.on_contacts_unsubscribed, dispatch_uid="surveys-unsubscribed")
    contacts_merged.connect(receivers.on_contacts_merged, dispatch_uid="surveys-merged")
    contact_erased.connect(receivers.on_contact_erased, dispatch_uid="surveys-erased")
    register_send_check("survey", survey_send_check)
    register_send_check("reminder", reminder_send_check)
    register_send_check("autoresponder", autoresponder_send_check)
    register_runner(receivers.RUNNER, surveys_run, label="survey follow-ups")
    register(
        WorkType(
            DISPATCH,
            SurveyDispatch,
            batch_handler=dispatches_due,
            label="survey dispatches",
            batch_size=500,
            max_attempts=8,
        ),
        replace=True,
    )
    register(
        WorkType(
            WORK_TYPE,
            Delivery,
            handler=deliver,
            label="webhook and Slack deliveries",
            batch_size=20,
            # Standard Webhooks: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, then failed for good.
            max_attempts=7,
            backoff=STANDARD_WEBHOOKS,
            update_fields=("status", "status_code", "delivered_at"),
        ),
        replace=True,
    )
