"""What the inbox keeps: seed payloads, duplicates, deterministic ids, timestamps, field casing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from contacts.models import Contact
from integrations.inbound.spec import event_time
from integrations.models import DailyUsage, InboxMessage
from tests.conftest import SegmentClient, make_integration
from tests.integrations.conftest import SEED_FILES, seed_text

pytestmark = pytest.mark.django_db


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


# --- seed payloads ------------------------------------------------------------------------------


def test_seed_copies_match_the_seed_files(seeds):
    for name, prefix in SEED_FILES.items():
        text = seed_text(prefix)
        if text is None:
            pytest.skip("the seed files are not on this machine")
        assert seeds[name]["messageId"] in text, name


def test_retention_grow_identify_and_reclaim_tracks_are_stored(segment, seeds):
    client, integration = segment
    names = ["grow_identify", "viewed_category", "viewed_product", "add_to_cart", "checkout_started"]
    response = client.post("/v1/batch", {"batch": [seeds[n] for n in names]}, gzip_body=True)
    assert response.json() == {"success": True, "accepted": 5, "duplicates": 0, "rejected": []}
    rows = {r.message_id: r for r in InboxMessage.objects.all()}
    grow = rows["api-2fBtljNDdeWNJCnhTKt2IYMSFwc"]
    assert (grow.type, grow.user_id, grow.anonymous_id, grow.email) == (
        "identify",
        "",
        "224ee0abc232ba012cc7932ca74609d9",
        "user_testing1@retention.com",
    )
    assert grow.payload["traits"] == seeds["grow_identify"]["traits"]
    # No sentAt: the timestamp sent is kept as it is.
    assert grow.timestamp == datetime(2024, 4, 16, 16, 54, 9, 697000, tzinfo=UTC)
    checkout = rows["api-2fBtpI6fKSb27s567KICPrJ7jQy"]
    assert (checkout.type, checkout.event, checkout.email) == (
        "track",
        "Checkout Started Reclaim",
        "jorge@retention.com",
    )
    assert checkout.payload["properties"]["line_items"][0]["variant"]["price"] == {
        "amount": 0.05,
        "currency_code": "USD",
    }
    assert {rows[m].event for m in rows} == {
        "",
        "Viewed Category Reclaim",
        "Viewed Product Reclaim",
        "Add To Cart Reclaim",
        "Checkout Started Reclaim",
    }


def test_retention_reclaim_track_on_the_single_endpoint(segment, seeds):
    client, _ = segment
    assert client.post("/v1/track", seeds["viewed_product"]).json() == {"success": True}
    row = InboxMessage.objects.get()
    assert row.payload["properties"]["ProductID"] == 9229193849
    # Segment received it and corrected its clock then: its receivedAt and timestamp stand,
    # and the row says when it reached us.
    assert row.payload["receivedAt"] == seeds["viewed_product"]["receivedAt"]
    assert row.timestamp == datetime(2024, 4, 16, 16, 54, 23, 497000, tzinfo=UTC)
    assert row.received_at > datetime(2026, 1, 1, tzinfo=UTC)


def test_loops_test_event_is_stored(segment, seeds):
    client, _ = segment
    assert client.post("/v1/identify", seeds["loops_identify"]).json() == {"success": True}
    row = InboxMessage.objects.get()
    assert (row.message_id, row.user_id, row.type) == ("segment-test-message-gt3ds8", "test-user-a5h7xb", "identify")
    assert row.payload["traits"]["mailingLists"] == [{"listId": "1234567890", "subscribed": True}]
    assert row.timestamp == datetime(2023, 5, 24, 17, 58, 30, 352000, tzinfo=UTC)


def test_refersion_delete_with_empty_array_context_is_stored(segment, seeds):
    client, _ = segment
    before = timezone.now()
    assert client.post("/v1/destination", seeds["refersion_delete"]).json() == {"success": True}
    after = timezone.now()
    row = InboxMessage.objects.get()
    assert (row.type, row.user_id, row.email, row.message_id) == (
        "delete",
        "5678",
        "peter@example.com",
        "delete-022bb90c-bbac-11e4-8dfc-aa07a5b093db",
    )
    assert row.payload["context"] == {} and row.payload["integrations"] == {}
    # Segment received it in 2019 and dated it then: its timestamp stands, however long the
    # forward took. The row says when it reached us.
    assert row.timestamp == datetime(2019, 2, 19, 23, 58, 54, 387000, tzinfo=UTC)
    assert before <= row.received_at <= after


# --- duplicates and message ids -----------------------------------------------------------------


def test_duplicates_across_requests_are_acknowledged_counted_and_stored_once(segment):
    client, integration = segment
    message = {"userId": "u1", "event": "E", "messageId": "dup-1"}
    assert client.post("/v1/track", message).json() == {"success": True}
    assert client.post("/v1/track", {**message, "event": "Changed"}).json() == {"success": True}
    response = client.post(
        "/v1/batch", {"batch": [{**message, "type": "track"}, {"type": "identify", "userId": "u1", "messageId": "new"}]}
    )
    assert response.json() == {"success": True, "accepted": 1, "duplicates": 1, "rejected": []}
    assert InboxMessage.objects.filter(message_id="dup-1").count() == 1
    # The first copy is the one kept.
    assert InboxMessage.objects.get(message_id="dup-1").event == "E"
    assert DailyUsage.objects.get(integration=integration).requests == 3


def test_duplicates_within_one_batch(segment):
    client, _ = segment
    item = {"type": "track", "userId": "u1", "event": "E", "messageId": "same"}
    response = client.post("/v1/batch", {"batch": [item, item, item]})
    assert response.json() == {"success": True, "accepted": 1, "duplicates": 2, "rejected": []}
    assert InboxMessage.objects.count() == 1


def test_the_same_message_id_in_two_integrations_is_two_messages(segment):
    first, _ = segment
    first.post("/v1/identify", {"userId": "u1", "messageId": "m"})
    _, other_key = make_integration("segment", name="other")
    SegmentClient(other_key).post("/v1/identify", {"userId": "u1", "messageId": "m"})
    assert InboxMessage.objects.filter(message_id="m").count() == 2


def test_message_without_message_id_gets_a_deterministic_one(segment):
    client, _ = segment
    message = {"userId": "u1", "event": "E", "properties": {"a": 1, "b": 2}}
    assert client.post("/v1/track", message).status_code == 200
    # Same content, keys in another order: the same message.
    assert client.post("/v1/track", {"properties": {"b": 2, "a": 1}, "event": "E", "userId": "u1"}).status_code == 200
    row = InboxMessage.objects.get()
    assert row.message_id.startswith("sy-") and len(row.message_id) == 43
    assert row.payload["messageId"] == row.message_id
    # Different content: a different message.
    client.post("/v1/track", {**message, "event": "F"})
    assert InboxMessage.objects.count() == 2
    # Two identical items in one batch: one stored, one counted as a duplicate.
    response = client.post("/v1/batch", {"batch": [{**message, "type": "track"}, {**message, "type": "track"}]})
    assert response.json() == {"success": True, "accepted": 1, "duplicates": 1, "rejected": []}
    assert InboxMessage.objects.count() == 3


def test_numeric_ids_are_kept_as_strings(segment):
    client, _ = segment
    client.post("/v1/group", {"userId": 42, "groupId": 7, "messageId": 99})
    row = InboxMessage.objects.get()
    assert (row.user_id, row.message_id, row.payload["groupId"]) == ("42", "99", 7)


# --- receivedAt and timestamps ---------------------------------------------------------------


def test_received_at_is_set_on_arrival(segment):
    client, _ = segment
    before = timezone.now()
    client.post("/v1/identify", {"userId": "u1"})
    after = timezone.now()
    row = InboxMessage.objects.get()
    assert before <= row.received_at <= after
    assert row.payload["receivedAt"] == iso(row.received_at)
    # No timestamp at all: it happened when it arrived.
    assert row.timestamp == row.received_at
    assert row.payload["timestamp"] == iso(row.received_at)


def test_a_forwarded_message_keeps_segments_receipt_and_skew_rule(segment):
    """Segment stamped receivedAt when it got the message; without a timestamp, its clock-skew
    rule runs from that receipt, not from when the forward reached us."""
    client, _ = segment
    before = timezone.now()
    client.post(
        "/v1/destination",
        {
            "type": "identify",
            "userId": "u1",
            "receivedAt": "2024-01-01T00:00:10Z",
            "sentAt": "2024-01-01T00:05:00Z",
            "originalTimestamp": "2024-01-01T00:04:00Z",
        },
    )
    row = InboxMessage.objects.get()
    assert row.received_at >= before
    assert row.payload["receivedAt"] == "2024-01-01T00:00:10Z"
    assert row.timestamp == datetime(2023, 12, 31, 23, 59, 10, tzinfo=UTC)


def test_timestamp_is_corrected_for_client_clock_skew(segment):
    client, _ = segment
    # The client's clock runs 10 minutes fast: it stamped the event at 12:00 and sent it at
    # 12:05, by its clock. The event happened five minutes before we received it.
    client.post(
        "/v1/track",
        {"userId": "u1", "event": "E", "originalTimestamp": "2030-01-01T12:00:00Z", "sentAt": "2030-01-01T12:05:00Z"},
    )
    row = InboxMessage.objects.get()
    assert row.timestamp == row.received_at - timedelta(minutes=5)
    assert row.payload["timestamp"] == iso(row.timestamp)
    assert row.payload["originalTimestamp"] == "2030-01-01T12:00:00Z"


def test_batch_level_sent_at_corrects_every_item(segment):
    client, _ = segment
    client.post(
        "/v1/batch",
        {
            "sentAt": "2024-01-01T00:01:00Z",
            "batch": [
                {"type": "track", "userId": "u1", "event": "A", "originalTimestamp": "2024-01-01T00:00:00Z"},
                {"type": "track", "userId": "u1", "event": "B", "originalTimestamp": "2024-01-01T00:00:30Z"},
            ],
        },
    )
    rows = {r.event: r for r in InboxMessage.objects.all()}
    assert rows["A"].timestamp == rows["A"].received_at - timedelta(seconds=60)
    assert rows["B"].timestamp == rows["B"].received_at - timedelta(seconds=30)


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ("2019-02-19T23:58:54.387Z", datetime(2019, 2, 19, 23, 58, 54, 387000, tzinfo=UTC)),
        ("2019-02-19T23:58:54", datetime(2019, 2, 19, 23, 58, 54, tzinfo=UTC)),
        ("2019-02-19 23:58:54", datetime(2019, 2, 19, 23, 58, 54, tzinfo=UTC)),
        ("2019-02-19T23:58:54+02:00", datetime(2019, 2, 19, 21, 58, 54, tzinfo=UTC)),
        ("Tue, 19 Feb 2019 23:58:54 +0000", datetime(2019, 2, 19, 23, 58, 54, tzinfo=UTC)),
        ("Tue, 19 Feb 2019 23:58:54 GMT", datetime(2019, 2, 19, 23, 58, 54, tzinfo=UTC)),
        (
            "Tue Feb 19 2019 23:58:54 GMT+0000 (Coordinated Universal Time)",
            datetime(2019, 2, 19, 23, 58, 54, tzinfo=UTC),
        ),
        (1550620734, datetime(2019, 2, 19, 23, 58, 54, tzinfo=UTC)),
        (1550620734387, datetime(2019, 2, 19, 23, 58, 54, 387000, tzinfo=UTC)),
        (1550620734.5, datetime(2019, 2, 19, 23, 58, 54, 500000, tzinfo=UTC)),
        ("1550620734", datetime(2019, 2, 19, 23, 58, 54, tzinfo=UTC)),
        ("2019-02-19", datetime(2019, 2, 19, tzinfo=UTC)),
    ],
)
def test_timestamps_are_parsed_leniently(segment, sent, expected):
    client, _ = segment
    assert client.post("/v1/identify", {"userId": "u1", "timestamp": sent}).status_code == 200
    assert InboxMessage.objects.get().timestamp == expected


@pytest.mark.parametrize(
    "sent", ["yesterday", "", None, True, {"a": 1}, [], "9999-99-99", "0001-01-01T00:00:00Z", 10**30, "x" * 200]
)
def test_unparseable_timestamps_are_ignored_not_refused(segment, sent):
    client, _ = segment
    response = client.post(
        "/v1/identify", {"userId": "u1", "timestamp": sent, "originalTimestamp": sent, "sentAt": sent}
    )
    assert response.status_code == 200
    row = InboxMessage.objects.get()
    assert row.timestamp == row.received_at


def test_original_timestamp_is_used_when_there_is_no_sent_at(segment):
    client, _ = segment
    client.post("/v1/identify", {"userId": "u1", "originalTimestamp": "2020-05-05T05:05:05Z"})
    assert InboxMessage.objects.get().timestamp == datetime(2020, 5, 5, 5, 5, 5, tzinfo=UTC)


# --- whose clock: event_time's rules, one by one -------------------------------------------------

RECEIVED = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        # Nothing from the sender: it happened when it arrived.
        ({}, RECEIVED),
        # A timestamp without sentAt stands; so does originalTimestamp alone.
        ({"timestamp": "2020-01-01T00:00:00Z"}, datetime(2020, 1, 1, tzinfo=UTC)),
        ({"originalTimestamp": "2020-01-01T00:00:00Z"}, datetime(2020, 1, 1, tzinfo=UTC)),
        # Segment's libraries send timestamp and sentAt: a clock two hours fast is corrected.
        ({"timestamp": "2026-03-01T13:59:50Z", "sentAt": "2026-03-01T14:00:00Z"}, RECEIVED - timedelta(seconds=10)),
        # A clock behind is corrected the same way.
        ({"timestamp": "2026-03-01T09:00:00Z", "sentAt": "2026-03-01T09:00:30Z"}, RECEIVED - timedelta(seconds=30)),
        # originalTimestamp alone (older clients) is corrected too.
        (
            {"originalTimestamp": "2026-03-01T13:59:50Z", "sentAt": "2026-03-01T14:00:00Z"},
            RECEIVED - timedelta(seconds=10),
        ),
        # RudderStack: the caller's back-dated timestamp wins over the originalTimestamp the SDK
        # stamps at call time; the skew rule applies to it.
        (
            {
                "timestamp": "2020-01-01T00:00:00Z",
                "originalTimestamp": "2026-03-01T12:00:00Z",
                "sentAt": "2026-03-01T12:00:00Z",
            },
            datetime(2020, 1, 1, tzinfo=UTC),
        ),
        (
            {"timestamp": "2020-01-01T00:00:00Z", "originalTimestamp": "2026-03-01T12:00:00Z"},
            datetime(2020, 1, 1, tzinfo=UTC),
        ),
        # An unparseable timestamp is ignored: originalTimestamp takes its place.
        (
            {"timestamp": "yesterday", "originalTimestamp": "2026-03-01T11:00:00Z", "sentAt": "2026-03-01T11:00:05Z"},
            RECEIVED - timedelta(seconds=5),
        ),
        # An unparseable sentAt: no correction.
        ({"timestamp": "2020-01-01T00:00:00Z", "sentAt": "soon"}, datetime(2020, 1, 1, tzinfo=UTC)),
        # Forwarded by Segment (it carries Segment's receivedAt): Segment already corrected the
        # timestamp, which stands whatever sentAt says.
        (
            {
                "timestamp": "2025-12-01T00:00:00Z",
                "receivedAt": "2025-12-01T00:00:01Z",
                "sentAt": "2025-12-01T02:00:00Z",
                "originalTimestamp": "2025-12-01T01:59:59Z",
            },
            datetime(2025, 12, 1, tzinfo=UTC),
        ),
        # Forwarded without a timestamp: the skew rule runs from Segment's receipt.
        (
            {
                "receivedAt": "2025-12-01T00:00:10Z",
                "sentAt": "2025-12-01T00:05:00Z",
                "originalTimestamp": "2025-12-01T00:04:00Z",
            },
            datetime(2025, 12, 1, 0, 0, 10, tzinfo=UTC) - timedelta(minutes=1),
        ),
        # A receivedAt in the future is nobody's receipt: the message is treated as direct.
        (
            {
                "timestamp": "2026-03-01T13:59:50Z",
                "sentAt": "2026-03-01T14:00:00Z",
                "receivedAt": "2027-01-01T00:00:00Z",
            },
            RECEIVED - timedelta(seconds=10),
        ),
    ],
)
def test_event_time_rules(message, expected):
    assert event_time(message, RECEIVED) == expected


def test_a_browser_two_hours_fast_is_not_stored_in_the_future(segment):
    client, _ = segment
    fast = timezone.now() + timedelta(hours=2)
    # analytics.js: timestamp and sentAt by the browser's clock, one second apart.
    client.post(
        "/v1/identify",
        {"userId": "u1", "timestamp": iso(fast - timedelta(seconds=1)), "sentAt": iso(fast)},
    )
    row = InboxMessage.objects.get()
    assert row.timestamp == row.received_at - timedelta(seconds=1)
    assert row.payload["timestamp"] == iso(row.timestamp)


def test_a_later_server_identify_beats_a_fast_browsers_identify(segment, drain):
    client, _ = segment
    fast = timezone.now() + timedelta(hours=2)
    client.post(
        "/v1/identify",
        {
            "userId": "u1",
            "traits": {"plan": "browser"},
            "timestamp": iso(fast - timedelta(seconds=1)),
            "sentAt": iso(fast),
        },
    )
    # The server's identify comes after, with a correct clock and no sentAt.
    client.post("/v1/identify", {"userId": "u1", "traits": {"plan": "server"}, "timestamp": iso(timezone.now())})
    drain()
    assert Contact.objects.get(user_id="u1").properties["plan"] == "server"


def test_a_rudderstack_back_dated_identify_does_not_overwrite_newer_traits(segment, drain):
    client, _ = segment
    now = timezone.now()
    client.post("/v1/identify", {"userId": "u1", "traits": {"plan": "pro"}, "timestamp": iso(now)})
    drain()
    # rudder-sdk-node: the caller's timestamp, plus originalTimestamp and sentAt stamped now.
    client.post(
        "/v1/batch",
        {
            "batch": [
                {
                    "type": "identify",
                    "userId": "u1",
                    "traits": {"plan": "free"},
                    "timestamp": "2020-01-01T00:00:00.000Z",
                    "originalTimestamp": iso(now),
                    "sentAt": iso(now),
                }
            ],
            "sentAt": iso(now),
        },
    )
    stored = InboxMessage.objects.get(payload__traits__plan="free")
    assert stored.timestamp < datetime(2020, 1, 2, tzinfo=UTC)
    drain()
    assert Contact.objects.get(user_id="u1").properties["plan"] == "pro"


# --- field casing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        {"user_id": "u1", "anonymous_id": "a1", "message_id": "m1", "event": "E"},
        {"userID": "u1", "anonymousID": "a1", "messageID": "m1", "Event": "E"},
        {"UserId": "u1", "AnonymousId": "a1", "MessageId": "m1", "EVENT": "E"},
        {"userid": "u1", "anonymousid": "a1", "messageid": "m1", "event": "E"},
    ],
)
def test_field_name_casing_variants_are_understood(segment, message):
    client, _ = segment
    assert client.post("/v1/track", message).status_code == 200
    row = InboxMessage.objects.get()
    assert (row.user_id, row.anonymous_id, row.message_id, row.event) == ("u1", "a1", "m1", "E")
    assert row.payload["userId"] == "u1" and "user_id" not in row.payload


def test_casing_variants_in_batch_items_and_type(segment):
    client, _ = segment
    response = client.post(
        "/v1/batch",
        {
            "batch": [
                {"Type": "Identify", "user_id": "u1", "Traits": {"a": 1}},
                {"TYPE": "track", "userID": "u1", "event": "E"},
                {"type": "group", "userId": "u1", "group_id": "g1"},
                {"type": "alias", "userId": "u1", "previous_id": "p1"},
            ]
        },
    )
    assert response.json() == {"success": True, "accepted": 4, "duplicates": 0, "rejected": []}
    rows = {r.type: r for r in InboxMessage.objects.all()}
    assert rows["identify"].payload["traits"] == {"a": 1}
    assert rows["group"].payload["groupId"] == "g1"
    assert rows["alias"].payload["previousId"] == "p1"


def test_the_exact_spelling_wins_over_a_variant(segment):
    client, _ = segment
    client.post("/v1/identify", {"userId": "exact", "user_id": "variant"})
    client.post("/v1/identify", {"user_id": "variant2", "userId": "exact2"})
    assert sorted(InboxMessage.objects.values_list("user_id", flat=True)) == ["exact", "exact2"]


def test_email_is_found_in_traits_properties_context_or_top_level(segment):
    client, _ = segment
    client.post("/v1/identify", {"userId": "u1", "traits": {"email": " A@B.com "}})
    client.post("/v1/track", {"userId": "u2", "event": "E", "properties": {"email": "c@d.com"}})
    client.post("/v1/track", {"userId": "u3", "event": "E", "context": {"traits": {"email": "e@f.com"}}})
    client.post("/v1/identify", {"userId": "u4", "email": "g@h.com"})
    assert dict(InboxMessage.objects.values_list("user_id", "email")) == {
        "u1": "a@b.com",
        "u2": "c@d.com",
        "u3": "e@f.com",
        "u4": "g@h.com",
    }


def test_a_raw_retry_without_message_id_is_a_duplicate_even_with_a_new_sent_at(segment):
    client, _ = segment
    message = {"userId": "u1", "event": "Paid", "timestamp": "2024-01-01T00:00:00Z"}
    client.post("/v1/track", {**message, "sentAt": "2024-01-01T00:00:01Z"})
    client.post("/v1/track", {**message, "sentAt": "2024-01-01T00:00:09Z", "writeKey": client.key})
    assert InboxMessage.objects.count() == 1
    client.post("/v1/track", {**message, "event": "Refunded"})
    assert InboxMessage.objects.count() == 2


def test_the_request_path_costs_the_same_queries_for_one_message_or_a_full_batch(segment):
    client, _ = segment

    def queries_for(count: int, tag: str) -> int:
        batch = [{"type": "track", "userId": f"u{i}", "event": "E", "messageId": f"{tag}-{i}"} for i in range(count)]
        with CaptureQueriesContext(connection) as captured:
            assert client.post("/v1/batch", {"batch": batch}).json()["accepted"] == count
        return len(captured)

    queries_for(1, "warm")  # the key lookup, remembered from here on
    assert queries_for(500, "big") == queries_for(1, "one")
