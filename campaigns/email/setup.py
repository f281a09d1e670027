"""The email engine's start-up: its work type and its signal receivers (called from
CampaignsConfig.ready)."""

from __future__ import annotations

from datetime import timedelta


def ready() -> None:
    from anymail.signals import inbound, tracking

    from campaigns.email.bounces import on_inbound, on_tracking
    from campaigns.email.models import EmailSend
    from campaigns.email.receivers import sends_redact, sends_repoint
    from campaigns.email.sending import send_batch
    from common.workqueue import Backoff, WorkType, register
    from contacts.signals import contact_erased, contacts_merged

    register(
        WorkType(
            "email_send",
            EmailSend,
            batch_handler=send_batch,
            label="email sends",
            batch_size=100,
            max_attempts=8,
            # 1, 4, 16 minutes … up to 6 hours: an SMTP server down for an hour loses nothing.
            backoff=Backoff(first=60, factor=4, cap=6 * 3600),
            # A send placed in a later rate-limit window waits for it, however far off.
            max_retry_after=timedelta(days=7).total_seconds(),
            update_fields=(
                "status",
                "reason",
                "sent_at",
                "to",
                "subject",
                "message_id",
                "provider_id",
                "transactional",
                "send_started_at",
                "rate_window",
            ),
        ),
        replace=True,
    )
    tracking.connect(on_tracking, dispatch_uid="campaigns-email-tracking")
    inbound.connect(on_inbound, dispatch_uid="campaigns-email-inbound")
    contact_erased.connect(sends_redact, dispatch_uid="campaigns-email-erase")
    contacts_merged.connect(sends_repoint, dispatch_uid="campaigns-email-merge")
