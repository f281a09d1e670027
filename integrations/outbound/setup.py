"""The outbound side's start-up: its work type and its signal receivers (IntegrationsConfig.ready)."""

from __future__ import annotations


def ready() -> None:
    from django.db.models.signals import post_save

    from common.workqueue import Backoff, WorkType, register
    from contacts.signals import contact_erased, contacts_merged, contacts_unsubscribed, events_recorded
    from integrations.capture.keys import site_key_ensure
    from integrations.capture.setup import ready as capture_ready
    from integrations.models import Integration
    from integrations.outbound.models import UPDATE_FIELDS, OutboxItem
    from integrations.outbound.receivers import on_erased, on_events_recorded, on_merged, on_unsubscribed
    from integrations.outbound.sending import WORK_TYPE, send_outbox

    register(
        WorkType(
            WORK_TYPE,
            OutboxItem,
            batch_handler=send_outbox,
            label="outbound Segment messages",
            batch_size=_batch_size(),
            # The retry window (OUTBOUND_RETRY_WINDOW_HOURS), not a count, ends an item's retries.
            max_attempts=1_000_000,
            # From 0.5 s, doubling, up to 60 s, each moved by up to half either way.
            backoff=Backoff(first=0.5, factor=2, cap=60, jitter="spread", spread=0.5),
            max_retry_after=300,
            update_fields=UPDATE_FIELDS,
        ),
        replace=True,
    )
    events_recorded.connect(on_events_recorded, dispatch_uid="outbound-app-events")
    contacts_unsubscribed.connect(on_unsubscribed, dispatch_uid="outbound-unsubscribed")
    contact_erased.connect(on_erased, dispatch_uid="outbound-erase")
    contacts_merged.connect(on_merged, dispatch_uid="outbound-merge")
    post_save.connect(site_key_ensure, sender=Integration, dispatch_uid="outbound-site-key")
    capture_ready()


def _batch_size() -> int:
    from django.conf import settings

    return max(1, int(getattr(settings, "OUTBOUND_BATCH_SIZE", 2000)))
