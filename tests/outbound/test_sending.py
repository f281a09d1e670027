"""Sending to a real collector: auth, gzip, limits, retries, Retry-After, permanent failures,
dead letters and replay, timeouts, isolation between integrations, order per person."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType

from common import clock
from common.workqueue.models import Attempt
from contacts.models import Contact
from integrations.outbound.collector import Collector
from integrations.outbound.models import FailureType, OutboxItem, OutboxSource, OutboxStatus, SyncRun
from integrations.outbound.services import app_event_item, items_replay, outbox_add
from tests.outbound.support import WRITE_KEY, send, source_integration

pytestmark = pytest.mark.django_db


def queue_events(integration, count: int, *, size: int = 0, event: str = "Survey Responded", start: int = 0):
    """`count` app events for as many contacts, each carrying `size` bytes of properties."""
    contacts = Contact.objects.bulk_create([Contact(email=f"p{start + n}@example.com") for n in range(count)])
    items = [
        app_event_item(
            integration,
            contact=contact,
            event=event,
            properties={"blob": "x" * size} if size else {"n": n},
            key=f"test:{contact.pk}",
            at=clock.now(),
        )
        for n, contact in enumerate(contacts)
    ]
    outbox_add(items)
    # Queued with ON CONFLICT DO NOTHING: read back by message id for their primary keys.
    stored = {i.message_id: i for i in OutboxItem.objects.filter(message_id__in=[i.message_id for i in items])}
    return [stored[i.message_id] for i in items]


def source(collector, **settings):
    return source_integration(collector.url, send_survey_responses=True, **settings)


def test_batches_use_basic_auth_gzip_and_keep_under_segments_limits(collector):
    integration = source(collector)
    queue_events(integration, 2600)
    queue_events(integration, 60, size=20_000, start=5000)
    counts = send()
    assert counts["done"] == 2660
    assert len(collector.message_ids()) == 2660
    requests = collector.requests
    assert all(r.status == 200 and r.gzip and r.retry_count == 0 for r in requests)
    assert max(r.count for r in requests) <= 2500
    # 60 messages of 20 KB do not fit one 500 KB request.
    assert len(requests) >= 4


def test_a_message_over_32_kb_fails_for_good_without_being_sent(collector):
    integration = source(collector)
    [item] = queue_events(integration, 1, size=40_000)
    send()
    item.refresh_from_db()
    assert item.status == OutboxStatus.FAILED and item.failure_type == FailureType.TOO_LARGE
    assert collector.requests == []


def test_a_wrong_write_key_is_a_permanent_failure_with_the_answer(collector):
    integration = source(collector, write_key="not-the-key")
    [item] = queue_events(integration, 1)
    send()
    item.refresh_from_db()
    assert item.status == OutboxStatus.FAILED and item.failure_type == FailureType.REJECTED
    assert "401" in item.error and "write key" in item.response
    attempt = Attempt.objects.get(content_type=ContentType.objects.get_for_model(OutboxItem), object_id=item.pk)
    assert attempt.status_code == 401


@pytest.mark.parametrize("status", ["500", "429"])
def test_retryable_answers_are_retried_with_the_retry_count(collector, status):
    integration = source(collector)
    [item] = queue_events(integration, 1)
    collector.set(mode=status, retry_after=7)
    assert send()["retrying"] == 1
    item.refresh_from_db()
    assert item.status == OutboxStatus.QUEUED and item.response
    wait = (item.next_attempt_at - clock.now()).total_seconds()
    if status == "429":
        assert 5 <= wait <= 7  # Retry-After
    else:
        assert wait <= 2  # backoff from half a second
    collector.set(mode="ok")
    OutboxItem.objects.filter(pk=item.pk).update(next_attempt_at=clock.now())
    assert send()["done"] == 1
    assert [r.retry_count for r in collector.requests] == [0, 1]
    assert [r.status for r in collector.requests] == [int(status), 200]


def test_retry_after_is_capped_at_five_minutes(collector):
    integration = source(collector)
    [item] = queue_events(integration, 1)
    collector.set(mode="429", retry_after=100_000)
    send()
    item.refresh_from_db()
    assert (item.next_attempt_at - clock.now()).total_seconds() <= 300


@pytest.mark.parametrize("code", [501, 505])
def test_501_and_505_are_not_retried(collector, code):
    integration = source(collector)
    [item] = queue_events(integration, 1)
    collector.fail_statuses = (code,)
    collector.set(fail_rate=1.0)
    send()
    item.refresh_from_db()
    assert item.status == OutboxStatus.FAILED and str(code) in item.error


def test_one_bad_message_does_not_fail_its_neighbours(collector):
    integration = source(collector)
    items = queue_events(integration, 40)
    bad = items[17]
    OutboxItem.objects.filter(integration=integration, message_id=bad.message_id).update(
        payload={**bad.payload, "event": ""}
    )
    counts = send()
    assert counts["done"] == 39 and counts["failed"] == 1
    failed = OutboxItem.objects.get(status=OutboxStatus.FAILED)
    assert failed.message_id == bad.message_id
    assert "event is required" in failed.response


def test_a_timeout_is_retried_and_a_retry_cannot_duplicate(collector, settings):
    settings.OUTBOUND_TIMEOUT = 0.5
    integration = source(collector)
    [item] = queue_events(integration, 1)
    collector.set(mode="slow", delay=1.5)
    assert send()["retrying"] == 1
    item.refresh_from_db()
    assert item.status == OutboxStatus.QUEUED and "timed out" in item.response
    collector.set(mode="ok", delay=0)
    OutboxItem.objects.filter(pk=item.pk).update(next_attempt_at=clock.now())
    send()
    # The slow answer still recorded the message: the retry carries the same messageId.
    assert collector.wait_for(lambda c: c.message_ids()[item.message_id] == 2, seconds=10)
    assert {r.retry_count for r in collector.requests} == {0, 1}


def test_after_the_retry_window_it_is_dead_lettered_and_replay_sends_it(collector):
    integration = source(collector)
    [item] = queue_events(integration, 1)
    OutboxItem.objects.filter(pk=item.pk).update(due_at=clock.now() - timedelta(hours=13))
    collector.set(mode="500")
    assert send()["failed"] == 1
    item.refresh_from_db()
    assert item.status == OutboxStatus.FAILED and item.failure_type == FailureType.DEAD_LETTER
    assert "12 h" in item.error
    collector.set(mode="ok")
    assert items_replay(pks=[item.pk]) == 1
    assert send()["done"] == 1
    item.refresh_from_db()
    assert item.status == OutboxStatus.SENT and item.failure_type == "" and item.attempts == 2


def test_a_slow_integration_does_not_hold_another(collector, settings):
    settings.OUTBOUND_TIMEOUT = 1.0
    with Collector(write_keys={WRITE_KEY}, delay=3.0) as slow:
        stuck = source_integration(slow.url, name="Slow", send_survey_responses=True)
        fine = source(collector)
        queue_events(stuck, 3)
        queue_events(fine, 3, start=100)
        counts = send()
    assert counts["done"] == 3 and counts["retrying"] == 3
    assert len(collector.message_ids()) == 3
    runs = {run.integration_id: run for run in SyncRun.objects.all()}
    assert runs[fine.pk].sent == 3 and runs[stuck.pk].queued == 3


def test_a_persons_later_message_waits_for_their_earlier_one(collector):
    integration = source(collector)
    contact = Contact.objects.create(email="ada@example.com")
    first = app_event_item(
        integration, contact=contact, event="Survey Responded", properties={}, key="a", at=clock.now()
    )
    first.next_attempt_at = clock.now() + timedelta(minutes=5)
    second = app_event_item(
        integration, contact=contact, event="Survey Responded", properties={}, key="b", at=clock.now()
    )
    outbox_add([first, second])
    assert send()["retrying"] == 1
    later = OutboxItem.objects.get(message_id=second.message_id)
    assert "earlier message of the same person" in later.last_error
    assert later.next_attempt_at >= clock.now() + timedelta(minutes=4)
    assert collector.messages == []


def test_sync_runs_count_what_happened(collector):
    integration = source(collector)
    queue_events(integration, 5)
    send()
    [run] = SyncRun.objects.filter(integration=integration)
    assert (run.sent, run.failed, run.skipped, run.queued) == (5, 0, 0, 0)
    assert run.requests[0]["status"] == 200 and run.requests[0]["messages"] == 5
    assert set(OutboxItem.objects.values_list("run", flat=True)) == {run.pk}
    assert OutboxItem.objects.filter(source=OutboxSource.EVENT).count() == 5
