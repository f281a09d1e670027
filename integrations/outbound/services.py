"""Writes of the outbound side: queueing messages, backfills, test sends, removal, replays.

Queueing is in bulk (one INSERT … ON CONFLICT DO NOTHING per 2,000 rows, no query per contact)
and idempotent: a message's id is stable and unique per integration, so queueing the same
contact or event again adds nothing. Workers are kicked once the rows commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from django.conf import settings
from django.db import transaction

from common import clock
from common.bulk import bulk_insert
from common.workqueue import kick_on_commit
from common.workqueue.models import Attempt, AttemptOutcome
from integrations.outbound import client
from integrations.outbound.models import FailureType, OutboxItem, OutboxSource, OutboxStatus, SyncRun, SyncTrigger
from integrations.outbound.payloads import (
    RECLAIM_EVENTS,
    app_track,
    group_message_id,
    grow_message_id,
    message_id,
    reclaim_message_id,
    reclaim_track,
    test_track,
)

INSERT_CHUNK = 2000


def send_delay(behaviour) -> timedelta:
    return timedelta(seconds=behaviour.option("send_delay_minutes") * settings.OUTBOUND_DELAY_MINUTE_SECONDS)


def person_key(contact_id: int) -> str:
    return f"c{contact_id}"


def outbox_add(items: list[OutboxItem]) -> int:
    """Queue items; those whose message id the integration already has are left out. Returns
    how many were offered (the database keeps one row per message id)."""
    if not items:
        return 0
    for start in range(0, len(items), INSERT_CHUNK):
        bulk_insert(OutboxItem, items[start : start + INSERT_CHUNK], ignore_conflicts=True)
    from integrations.outbound.sending import WORK_TYPE

    kick_on_commit(WORK_TYPE)
    return len(items)


def _item(integration, *, source, type, contact, message_id, due, at, event="", payload=None) -> OutboxItem:
    now = clock.now()
    return OutboxItem(
        integration_id=integration.pk,
        source=source,
        type=type,
        event=event,
        contact_id=contact.pk,
        email=contact.email or "",
        person_key=person_key(contact.pk),
        message_id=message_id,
        payload=payload or {},
        event_at=at,
        due_at=due,
        next_attempt_at=due,
        status=OutboxStatus.QUEUED,
        created_at=now,
    )


def grow_items(integration, *, contact, at: datetime, due: datetime, group_id: str) -> list[OutboxItem]:
    """The Grow identify of a contact (its payload is built when due), and its group call."""
    items = [
        _item(
            integration,
            source=OutboxSource.GROW,
            type="identify",
            contact=contact,
            message_id=grow_message_id(integration.pk, contact.pk),
            due=due,
            at=at,
        )
    ]
    if group_id:
        items.append(
            _item(
                integration,
                source=OutboxSource.GROW,
                type="group",
                contact=contact,
                message_id=group_message_id(integration.pk, contact.pk, group_id),
                due=due,
                at=at,
                payload={"groupId": group_id},
            )
        )
    return items


def reclaim_item(
    integration, *, contact, event: str, properties: dict, page_url: str, at: datetime, due: datetime
) -> OutboxItem | None:
    if event not in RECLAIM_EVENTS or not contact.email:
        return None
    mid = reclaim_message_id(integration.pk, contact.pk, event, properties, at)
    message = reclaim_track(mid=mid, event=event, properties=properties, page_url=page_url, email=contact.email, at=at)
    return _item(
        integration,
        source=OutboxSource.RECLAIM,
        type="track",
        event=message["event"],
        contact=contact,
        message_id=mid,
        due=due,
        at=at,
        payload=message,
    )


def app_event_item(integration, *, contact, event: str, properties: dict, key: str, at: datetime) -> OutboxItem:
    mid = message_id(integration.pk, "event", key)
    message = app_track(
        mid=mid, event=event, properties=properties, email=contact.email, user_id=contact.user_id, at=at
    )
    return _item(
        integration,
        source=OutboxSource.EVENT,
        type="track",
        event=event,
        contact=contact,
        message_id=mid,
        due=clock.now(),
        at=at,
        payload=message,
    )


# --- staff actions ------------------------------------------------------------------------------
@dataclass
class TestResult:
    status_code: int | None
    ok: bool
    message_id: str
    response: str
    item: OutboxItem


def send_test(*, integration) -> TestResult:
    """Send one test track now, outside the queue's schedule, and say what the endpoint answered.

    It is an outbox row like any other (its attempt is logged, and a SyncRun records it), but
    it is not retried: it is a probe of the settings.
    """
    behaviour = integration.behaviour()
    now = clock.now()
    mid = message_id(integration.pk, "test", now.isoformat())
    message = test_track(mid=mid, at=now)
    item = OutboxItem.objects.create(
        integration=integration,
        source=OutboxSource.TEST,
        type="track",
        event=message["event"],
        person_key="test",
        message_id=mid,
        payload=message,
        event_at=now,
        due_at=now,
        next_attempt_at=None,
        attempts=1,
        claimed_at=now,
    )
    write_key = behaviour.option("write_key")
    if integration.settings.get("removed_at"):
        answer = client.Answer(None, "", "the integration is removed: it sends nothing", None, now, 0)
    elif not write_key:
        answer = client.Answer(None, "", "no Write Key is set on the integration", None, now, 0)
    else:
        answer = client.post_batch(
            endpoint=behaviour.option("endpoint"), write_key=write_key, messages=[orjson.dumps(message)]
        )
    finished = clock.now()
    if answer.ok:
        item.status, item.sent_at = OutboxStatus.SENT, answer.started_at
    else:
        item.status, item.error, item.response = OutboxStatus.FAILED, f"test failed: {answer.describe()}", answer.body
        item.failure_type = FailureType.REJECTED if answer.status_code else FailureType.NOT_CONFIGURED
        item.last_error = item.error
    item.finished_at = finished
    with transaction.atomic():
        item.run = SyncRun.objects.create(
            integration=integration,
            trigger=SyncTrigger.TEST,
            started_at=now,
            finished_at=finished,
            sent=1 if answer.ok else 0,
            failed=0 if answer.ok else 1,
            requests=[
                {
                    "at": answer.started_at.isoformat(),
                    "status": answer.status_code,
                    "messages": 1,
                    "ms": answer.duration_ms,
                    "retry_count": 0,
                    "answer": (answer.body or answer.error)[:300],
                }
            ],
        )
        item.save()
        from django.contrib.contenttypes.models import ContentType

        Attempt.objects.create(
            content_type=ContentType.objects.get_for_model(OutboxItem),
            object_id=item.pk,
            number=1,
            started_at=answer.started_at,
            duration_ms=answer.duration_ms,
            outcome=AttemptOutcome.OK if answer.ok else AttemptOutcome.FAILED,
            status_code=answer.status_code,
            response=answer.body[:4096],
            error="" if answer.ok else answer.describe()[:2000],
            worker="send-test",
        )
    return TestResult(answer.status_code, answer.ok, mid, answer.body or answer.error, item)


@transaction.atomic
def integration_remove(*, integration, actor: str) -> int:
    """ "Remove integration": nothing more is captured or sent; the history stays. Returns how
    many queued messages were cancelled."""
    now = clock.now()
    settings_ = dict(integration.settings or {})
    settings_["removed_at"] = now.isoformat()
    settings_["removed_by"] = actor[:100]
    integration.settings = settings_
    integration.enabled = False
    integration.save(update_fields=["settings", "enabled", "updated_at"])
    return OutboxItem.objects.filter(integration=integration, status=OutboxStatus.QUEUED).update(
        status=OutboxStatus.CANCELLED,
        error=f"integration removed by {actor}"[:2000],
        next_attempt_at=None,
        claimed_by="",
        finished_at=now,
    )


def items_replay(*, pks: Iterable[int]) -> int:
    """Failed (dead-lettered or rejected), cancelled or skipped items are due again now, with a
    fresh retry window; the rules are applied again when they come due (a suppressed contact is
    skipped again)."""
    from common.workqueue.services import items_retry_now
    from integrations.outbound.sending import WORK_TYPE

    failed = list(
        OutboxItem.objects.filter(
            pk__in=list(pks), status__in=[OutboxStatus.FAILED, OutboxStatus.CANCELLED, OutboxStatus.SKIPPED]
        )
        .exclude(source=OutboxSource.TEST)
        .values_list("pk", flat=True)
    )
    result = items_retry_now(model=OutboxItem, pks=failed)
    if result.changed:
        kick_on_commit(WORK_TYPE)
    return result.changed
