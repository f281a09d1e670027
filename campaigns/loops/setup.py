"""Wire loops in at start-up (called from campaigns.apps.CampaignsConfig.ready)."""

from __future__ import annotations


def ready() -> None:
    from campaigns.email.rules import register_send_check
    from campaigns.email.signals import email_sent
    from campaigns.loops import receivers
    from campaigns.loops.checks import loop_send_check
    from campaigns.loops.settle import loops_settle
    from common.workqueue import register_runner
    from contacts.signals import contact_erased, contacts_merged, contacts_unsubscribed, events_recorded

    events_recorded.connect(receivers.on_events_recorded, dispatch_uid="loops-events")
    contacts_unsubscribed.connect(receivers.on_contacts_unsubscribed, dispatch_uid="loops-unsubscribed")
    contacts_merged.connect(receivers.on_contacts_merged, dispatch_uid="loops-merged")
    contact_erased.connect(receivers.on_contact_erased, dispatch_uid="loops-erased")
    email_sent.connect(receivers.on_email_sent, dispatch_uid="loops-emailed")
    register_send_check("loop", loop_send_check)
    register_runner("loops", loops_settle, label="loop enrolments")
