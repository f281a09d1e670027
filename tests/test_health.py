"""/healthz tells a monitor when messages arrive but no worker applies them."""

from __future__ import annotations

import uuid
from datetime import UTC, timedelta

import pytest
from django.utils import timezone
from django_q.models import Task
from django_q.tasks import async_task

from integrations.health import DRAIN_TASK
from integrations.models import InboxMessage, InboxStatus

pytestmark = pytest.mark.django_db


def identify(segment, user_id: str = "u1") -> InboxMessage:
    client, _ = segment
    response = client.post("/v1/identify", {"userId": user_id, "traits": {"email": f"{user_id}@example.com"}})
    assert response.status_code == 200, response.content
    return InboxMessage.objects.get(user_id=user_id)


def due_since(row: InboxMessage, minutes: float) -> None:
    """The message came due `minutes` ago and nothing has claimed it since."""
    moment = timezone.now() - timedelta(minutes=minutes)
    InboxMessage.objects.filter(pk=row.pk).update(received_at=moment, next_attempt_at=moment)


def drain_ran(minutes_ago: float = 0) -> None:
    """A drain run by django-q2 (in the foreground), its record dated `minutes_ago`."""
    task_id = async_task(DRAIN_TASK, task_name="drain inbox", sync=True)
    moment = timezone.now() - timedelta(minutes=minutes_ago)
    Task.objects.filter(id=task_id).update(started=moment, stopped=moment)


def drain_failed(minutes_ago: float, error: str) -> None:
    moment = timezone.now() - timedelta(minutes=minutes_ago)
    Task.objects.create(
        id=uuid.uuid4().hex,
        name="drain inbox",
        func=DRAIN_TASK,
        started=moment,
        stopped=moment,
        result=error,
        success=False,
    )


def health(client):
    response = client.get("/healthz")
    return response.status_code, response.json()


def test_healthy_with_an_empty_inbox(client):
    assert health(client) == (200, {"db": "ok", "queue": "ok"})


def test_a_fresh_message_waiting_for_its_first_drain_is_healthy(client, segment):
    identify(segment)
    due_since(InboxMessage.objects.get(), minutes=1)
    assert health(client) == (200, {"db": "ok", "queue": "ok"})


def test_an_old_due_message_and_no_drain_ever_is_a_stall(client, segment):
    due_since(identify(segment), minutes=7)
    status, body = health(client)
    assert status == 503
    assert body["db"] == "ok"
    assert body["queue"] == "stalled: oldest pending message is 7 minutes old and no drain has finished yet"


def test_a_stall_names_when_the_last_drain_finished(client, segment):
    drain_ran(minutes_ago=20)
    last = Task.objects.get().stopped
    due_since(identify(segment), minutes=12)
    status, body = health(client)
    assert status == 503
    assert body["queue"] == (
        "stalled: oldest pending message is 12 minutes old and no drain has finished since "
        + last.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    )


def test_a_stall_names_the_drain_failure_that_followed(client, segment):
    drain_ran(minutes_ago=30)
    drain_failed(minutes_ago=8, error="OperationalError: could not connect to server")
    due_since(identify(segment), minutes=10)
    status, body = health(client)
    assert status == 503
    assert body["queue"].startswith(
        "stalled: oldest pending message is 10 minutes old and no drain has finished since "
    )
    assert body["queue"].endswith(": OperationalError: could not connect to server")
    assert "the last drain failed at " in body["queue"]


def test_a_backlog_that_drains_keep_working_through_is_healthy(client, segment):
    """A large import keeps old messages due for a while; drains finishing means it is moving."""
    drain_ran(minutes_ago=1)
    due_since(identify(segment), minutes=30)
    assert health(client) == (200, {"db": "ok", "queue": "ok"})


def test_a_recent_failed_drain_does_not_count_as_a_drain(client, segment):
    drain_failed(minutes_ago=1, error="RuntimeError: boom")
    due_since(identify(segment), minutes=9)
    status, body = health(client)
    assert status == 503
    assert "no drain has finished yet; the last drain failed at " in body["queue"]
    assert body["queue"].endswith(": RuntimeError: boom")


def test_messages_being_worked_or_settled_are_not_waiting(client, segment):
    leased = identify(segment, "leased")
    long_ago = timezone.now() - timedelta(hours=2)
    InboxMessage.objects.filter(pk=leased.pk).update(
        received_at=long_ago, status=InboxStatus.PROCESSING, next_attempt_at=timezone.now() + timedelta(minutes=4)
    )
    settled = identify(segment, "failed-for-good")
    InboxMessage.objects.filter(pk=settled.pk).update(
        received_at=long_ago, status=InboxStatus.FAILED, next_attempt_at=None
    )
    assert health(client) == (200, {"db": "ok", "queue": "ok"})


def test_the_stall_threshold_is_a_setting(client, segment, settings):
    due_since(identify(segment), minutes=2)
    assert health(client)[0] == 200
    settings.HEALTH_QUEUE_STALL_SECONDS = 60
    status, body = health(client)
    assert status == 503
    assert body["queue"].startswith("stalled: oldest pending message is 2 minutes old")
    settings.HEALTH_QUEUE_STALL_SECONDS = 0  # off
    assert health(client)[0] == 200


def test_the_oldest_lane_head_counts(client, segment):
    """Messages of several people sit in several lanes; the longest wait of any is reported."""
    rows = [identify(segment, f"user-{n}") for n in range(12)]
    assert len({row.lane for row in rows}) > 1
    for row in rows:
        due_since(row, minutes=1)
    last_lane = max(row.lane for row in rows)
    due_since(min((row for row in rows if row.lane == last_lane), key=lambda row: row.pk), minutes=20)
    status, body = health(client)
    assert status == 503
    assert body["queue"].startswith("stalled: oldest pending message is 20 minutes old")
