"""The drain: final statuses, retries with backoff, poison messages, concurrency, query count."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from contacts.models import Contact, ContactEvent
from integrations.drain import drain_inbox
from integrations.lanes import LANES, LOCK_CLASS, lane_of
from integrations.models import InboxMessage, Integration
from tests.conftest import SegmentClient, make_integration


def post(client, path, body):
    response = client.post(path, body)
    assert response.status_code == 200, response.content


def make_due():
    InboxMessage.objects.exclude(next_attempt_at=None).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def test_each_row_ends_processed_skipped_or_failed(segment, drain):
    client, _ = segment
    post(
        client,
        "/v1/batch",
        {
            "batch": [
                {"type": "identify", "userId": "u1", "traits": {"email": "u1@example.com"}},
                {"type": "group", "userId": "u1", "groupId": "g1"},
                {"type": "track", "anonymousId": "nobody", "event": "Viewed"},
            ]
        },
    )
    result = drain()
    assert (result.processed, result.skipped, result.waiting, result.failed) == (1, 1, 1, 0)
    rows = {r.type: r for r in InboxMessage.objects.all()}
    assert rows["identify"].status == "processed"
    assert rows["identify"].contact.user_id == "u1"
    assert rows["identify"].processed_at is not None
    assert rows["group"].status == "skipped" and "group calls" in rows["group"].reason
    assert rows["track"].status == "waiting" and "anonymous visitor" in rows["track"].reason
    assert all(r.next_attempt_at is None and r.attempts == 1 for r in rows.values())
    assert drain().total == 0


def test_a_poison_message_fails_alone_and_is_retried_then_given_up(segment, drain, settings, monkeypatch):
    settings.INBOX_MAX_ATTEMPTS = 3
    client, _ = segment
    # A bug that only one message triggers.
    from integrations.kinds.segment import SegmentKind

    identify = SegmentKind.identify

    def buggy(self, batch, message):
        if message.user_id == "poison":
            raise AttributeError("a bug this message triggers")
        identify(self, batch, message)

    monkeypatch.setattr(SegmentKind, "identify", buggy)
    post(
        client,
        "/v1/batch",
        {
            "batch": [
                {"type": "identify", "userId": "u1", "traits": {"email": "u1@example.com"}},
                {"type": "identify", "userId": "poison", "messageId": "poison"},
                {"type": "track", "userId": "u1", "event": "Bought"},
            ]
        },
    )
    result = drain()
    assert (result.processed, result.failed) == (2, 1)
    assert ContactEvent.objects.get().name == "Bought"
    poison = InboxMessage.objects.get(message_id="poison")
    assert poison.status == "failed"
    assert "AttributeError" in poison.reason
    assert poison.attempts == 1
    first_wait = poison.next_attempt_at - poison.processed_at
    assert first_wait >= timedelta(seconds=29)
    assert drain().total == 0  # not due yet: backoff

    make_due()
    drain()
    poison.refresh_from_db()
    assert poison.attempts == 2
    assert poison.next_attempt_at - poison.processed_at > first_wait  # backs off further

    make_due()
    drain()
    poison.refresh_from_db()
    assert (poison.status, poison.attempts, poison.next_attempt_at) == ("failed", 3, None)
    make_due()
    assert drain().total == 0  # stays failed


def test_an_integration_that_cannot_be_loaded_does_not_stop_the_others(db, drain):
    broken, broken_key = make_integration("segment", name="broken")
    good, good_key = make_integration("segment", name="good")
    post(SegmentClient(broken_key), "/v1/identify", {"userId": "b1", "traits": {"email": "b@example.com"}})
    post(SegmentClient(good_key), "/v1/identify", {"userId": "g1", "traits": {"email": "g@example.com"}})
    # Its kind was removed from the code after the messages were accepted.
    Integration.objects.filter(pk=broken.pk).update(kind="retired")
    result = drain()
    assert (result.processed, result.failed) == (1, 1)
    row = InboxMessage.objects.get(integration=broken)
    assert row.status == "failed"
    assert "unknown kind" in row.reason
    assert row.next_attempt_at is not None
    assert Contact.objects.get().user_id == "g1"


def test_disabled_integration_rows_are_skipped(segment, drain):
    client, integration = segment
    post(client, "/v1/identify", {"userId": "u1", "traits": {"email": "u1@example.com"}})
    Integration.objects.filter(pk=integration.pk).update(enabled=False)
    drain()
    row = InboxMessage.objects.get()
    assert (row.status, row.reason, row.next_attempt_at) == ("skipped", "integration is disabled", None)


def test_a_crashed_worker_leaves_rows_that_come_back(segment, drain):
    client, _ = segment
    post(client, "/v1/identify", {"userId": "u1", "traits": {"email": "u1@example.com"}})
    # A worker claimed the row and died: status processing, lease in the future.
    InboxMessage.objects.update(status="processing", attempts=1, next_attempt_at=timezone.now() + timedelta(minutes=5))
    assert drain().total == 0
    make_due()
    assert drain().processed == 1
    assert InboxMessage.objects.get().attempts == 2


def _mixed_batch(first: int, count: int) -> list[dict]:
    batch = []
    for i in range(first, first + count):
        if i % 3 == 0:
            batch.append(
                {
                    "type": "identify",
                    "userId": f"new{i}",
                    "traits": {"email": f"new{i}@x.io", "plan": "pro", "seats": i, "mailingLists": {"news": True}},
                }
            )
        elif i % 3 == 1:
            batch.append(
                {
                    "type": "track",
                    "userId": f"old{i % 40}",
                    "event": "Bought",
                    "properties": {"total": i},
                    "context": {"traits": {"last_order": i}},
                }
            )
        else:
            batch.append({"type": "page", "anonymousId": f"anon{i % 40}", "name": "Pricing", "messageId": f"m{i}"})
    return batch


def test_drain_queries_do_not_grow_with_messages(segment):
    client, _ = segment
    # 40 existing contacts with an anonymousId each, so the chunk mixes updates and creates.
    post(
        client,
        "/v1/batch",
        {
            "batch": [
                {
                    "type": "identify",
                    "userId": f"old{i}",
                    "anonymousId": f"anon{i}",
                    "traits": {"email": f"old{i}@x.io"},
                }
                for i in range(40)
            ]
        },
    )
    drain_inbox(max_seconds=30)
    counts = {}
    for first, count in ((0, 150), (150, 450)):
        post(client, "/v1/batch", {"batch": _mixed_batch(first, count)})
        with CaptureQueriesContext(connection) as queries:
            result = drain_inbox(max_seconds=30)
        assert result.processed == count
        counts[count] = (len(queries), result.chunks)
    # Claim, preload, flush, wake-ups, status writes, and what the apps above do with a chunk's
    # events (loops, surveys, affiliates: a query or two each): a fixed handful a chunk (lane
    # locks and the empty lanes probed at the end included), whatever its size; one query a
    # row would add 19 a chunk at 150 messages, 56 at 450. (SQLite splits bulk updates at its
    # 999-parameter limit, hence the headroom.)
    for queries, chunks in counts.values():
        assert queries <= 60 * chunks
    # Three times the messages, the same chunks (a lane each on PostgreSQL), about the same queries.
    assert counts[450][1] == counts[150][1]
    assert counts[450][0] <= counts[150][0] * 1.25
    assert Contact.objects.count() == 40 + 200
    assert ContactEvent.objects.count() == 400


@pytest.mark.django_db(transaction=True)
def test_two_drains_at_once_never_process_a_row_twice():
    if connection.vendor != "postgresql":
        pytest.skip("SKIP LOCKED and concurrent writers need PostgreSQL")
    integration, key = make_integration("segment")
    client = SegmentClient(key)
    users = [f"u{i}" for i in range(10)]
    post(
        client,
        "/v1/batch",
        {"batch": [{"type": "identify", "userId": u, "traits": {"email": f"{u}@x.io"}} for u in users]},
    )
    drain_inbox(max_seconds=30)
    batch = []
    for i in range(600):
        user = users[i % 10]
        if i % 2:
            batch.append({"type": "track", "userId": user, "event": f"E{i}"})
        else:
            # Each identify sets its own property on a shared contact: a lost update shows.
            batch.append({"type": "identify", "userId": user, "traits": {f"p{i}": i}})
    for start in range(0, 600, 200):
        post(client, "/v1/batch", {"batch": batch[start : start + 200]})

    errors = []
    barrier = threading.Barrier(2)

    def work():
        try:
            barrier.wait()
            drain_inbox(max_seconds=60, chunk=25)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    drain_inbox(max_seconds=30)  # anything a deadlock sent to retry
    rows = InboxMessage.objects.exclude(type="identify", payload__traits__has_key="email")
    assert rows.count() == 600
    assert set(rows.values_list("status", flat=True)) == {"processed"}
    assert set(rows.values_list("attempts", flat=True)) == {1}
    assert ContactEvent.objects.count() == 300
    assert Contact.objects.count() == 10
    for contact in Contact.objects.all():
        index = users.index(contact.user_id)
        expected = {f"p{i}" for i in range(600) if i % 2 == 0 and i % 10 == index}
        assert set(contact.properties) == expected


def test_a_person_stays_in_one_lane():
    assert lane_of("user-1", "anon-9") == lane_of("user-1", "") == lane_of("user-1", "anon-other")
    assert lane_of("", "anon-9") == lane_of("", "anon-9")
    assert {lane_of(f"user-{i}", "") for i in range(200)} == set(range(LANES))


@pytest.mark.django_db(transaction=True)
def test_a_lane_held_by_another_worker_is_left_to_it():
    """Another worker holds one lane (its own session's advisory lock): this drain applies
    every other lane and leaves that lane's rows, in order, to the holder."""
    if connection.vendor != "postgresql":
        pytest.skip("lanes are PostgreSQL advisory locks")
    _, key = make_integration("segment")
    users = [f"u{i}" for i in range(40)]
    post(SegmentClient(key), "/v1/batch", {"batch": [{"type": "track", "userId": u, "event": "E"} for u in users]})
    held = lane_of(users[0], "")
    with connections["default"].copy().cursor() as other:
        other.execute("SELECT pg_advisory_lock(%s, %s)", [LOCK_CLASS, held])
        drain_inbox(max_seconds=30)
        waiting_for_holder = InboxMessage.objects.filter(status="pending")
        assert {m.user_id for m in waiting_for_holder} == {u for u in users if lane_of(u, "") == held}
        assert not InboxMessage.objects.exclude(lane=held).exclude(status="processed").exists()
        other.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_CLASS, held])
        other.connection.close()
    drain_inbox(max_seconds=30)
    assert set(InboxMessage.objects.values_list("status", flat=True)) == {"processed"}


def test_rows_of_a_killed_worker_come_back_when_the_lease_runs_out_without_lanes(segment, drain):
    """Without lanes (SQLite) a claim leases its rows: a killed worker's rows come due again
    when the lease runs out, and that claim counts as an attempt."""
    import time_machine

    from integrations.claim import UNLANED_LEASE, claim

    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL claims within a held lane, with no lease (see the test above)")
    client, _ = segment
    post(client, "/v1/batch", {"batch": [{"type": "identify", "userId": f"k{i}"} for i in range(5)]})
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        claimed_rows = claim(100)  # the worker that dies holds these
    assert len(claimed_rows) == 5
    assert set(InboxMessage.objects.values_list("status", flat=True)) == {"processing"}
    with time_machine.travel(start + UNLANED_LEASE - timedelta(seconds=1), tick=False):
        assert drain().total == 0
    with time_machine.travel(start + UNLANED_LEASE + timedelta(seconds=1), tick=False):
        assert drain().processed == 5
    assert set(InboxMessage.objects.values_list("attempts", flat=True)) == {2}


@pytest.mark.django_db(transaction=True)
def test_rows_of_a_killed_worker_come_back_at_once_on_postgresql():
    """A worker holds a lane and has claimed its chunk when it is killed: its session ends, the
    lane is free, and the rows are due as they were (the claim wrote nothing). The next drain
    applies them with no lease to wait out, once each."""
    if connection.vendor != "postgresql":
        pytest.skip("lanes are PostgreSQL advisory locks; SQLite keeps a lease")
    from integrations.claim import claim
    from integrations.lanes import lane_held

    _, key = make_integration("segment")
    lane = lane_of("k0", "")
    users = [u for u in (f"k{i}" for i in range(200)) if lane_of(u, "") == lane][:5]
    post(SegmentClient(key), "/v1/batch", {"batch": [{"type": "identify", "userId": u} for u in users]})
    claimed, killed, worker = threading.Event(), threading.Event(), {}

    def doomed_worker():
        try:
            with lane_held(lane) as held:
                assert held
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_backend_pid()")
                    worker["pid"] = cursor.fetchone()[0]
                worker["rows"] = claim(100, lane=lane)
                claimed.set()
                killed.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=doomed_worker)
    thread.start()
    assert claimed.wait(10)
    assert len(worker["rows"]) == 5
    assert drain_inbox(max_seconds=30).total == 0  # the lane is held: its rows are left to it
    with connections["default"].copy().cursor() as other:
        other.execute("SELECT pg_terminate_backend(%s)", [worker["pid"]])
        other.connection.close()
    killed.set()
    thread.join(10)
    assert drain_inbox(max_seconds=30).processed == 5
    assert set(InboxMessage.objects.values_list("status", "attempts")) == {("processed", 1)}
    assert Contact.objects.filter(user_id__in=users).count() == 5
