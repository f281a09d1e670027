"""Webhook writes: queue an event for its subscribers, save subscriptions, replay deliveries.

`webhook_events_emit` turns events into one Delivery per enabled subscription that wants the
type, in one insert, inside the caller's transaction, and kicks the "webhook" queue once it
commits. The body is fixed when queued: `{"type", "timestamp", "data"}`, and its webhook-id
(`msg_…`) stays the same on every retry and replay, so a receiver can drop repeats.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson
from django.db import transaction

from campaigns.webhooks.models import (
    Delivery,
    DeliveryKind,
    WebhookEvent,
    WebhookSubscription,
)
from common import clock
from common.bulk import bulk_insert
from common.workqueue import kick_on_commit
from common.workqueue.services import Changed, items_retry_now

WORK_TYPE = "webhook"


def message_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


def body(event_type: str, data: dict, at: datetime) -> str:
    return orjson.dumps(
        {"type": event_type, "timestamp": at.isoformat().replace("+00:00", "Z"), "data": data},
        option=orjson.OPT_NON_STR_KEYS,
        default=str,
    ).decode()


def webhook_events_emit(*, events: Iterable[tuple[str, dict]]) -> int:
    """Queue each (event type, data) for the subscriptions that want it. Returns how many
    deliveries were queued."""
    events = list(events)
    if not events:
        return 0
    if any(event_type not in WebhookEvent.values for event_type, _data in events):
        raise ValueError(f"webhook event types are {', '.join(WebhookEvent.values)}")
    subscriptions = list(WebhookSubscription.objects.filter(enabled=True))
    if not subscriptions:
        return 0
    now = clock.now()
    rows = [
        Delivery(
            kind=DeliveryKind.WEBHOOK,
            subscription=subscription,
            url=subscription.url,
            event_type=event_type,
            message_id=message_id(),
            payload=body(event_type, data, now),
            next_attempt_at=now,
            created_at=now,
        )
        for event_type, data in events
        for subscription in subscriptions
        if event_type in (subscription.events or [])
    ]
    if rows:
        bulk_insert(Delivery, rows)
        kick_on_commit(WORK_TYPE)
    return len(rows)


def slack_post_queue(*, url: str, text: str, event_type: str, notification_id: int | None) -> Delivery:
    """A Slack incoming-webhook call ({"text": …}), through the same queue and log."""
    now = clock.now()
    delivery = Delivery.objects.create(
        kind=DeliveryKind.SLACK,
        notification_id=notification_id,
        url=url,
        event_type=event_type,
        message_id=message_id(),
        payload=orjson.dumps({"text": text}).decode(),
        next_attempt_at=now,
        created_at=now,
    )
    kick_on_commit(WORK_TYPE)
    return delivery


@transaction.atomic
def subscription_save(*, subscription: WebhookSubscription | None = None, **fields: Any) -> WebhookSubscription:
    subscription = subscription or WebhookSubscription(created_at=clock.now())
    for name, value in fields.items():
        setattr(subscription, name, value)
    if fields.get("enabled") is True:
        subscription.disabled_reason = ""
    subscription.updated_at = clock.now()
    subscription.save()
    return subscription


def deliveries_replay(*, pks: Iterable[int]) -> Changed:
    """Send deliveries again now, with the same webhook-id and body (signed anew); delivered
    ones too. Their attempts go on counting in the log."""
    result = items_retry_now(model=Delivery, pks=list(pks))
    if result.changed:
        kick_on_commit(WORK_TYPE)
    return result
