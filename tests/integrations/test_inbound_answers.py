"""Every answer of the inbound contract (CONTRACT.md, "Segment inbound"), with exact bodies."""

from __future__ import annotations

import gzip
import json

import pytest
from django.db import connection
from django.test import Client

from integrations.keys import api_key_create
from integrations.models import DailyUsage, InboxMessage, RejectedMessage
from tests.conftest import SegmentClient, make_integration
from tests.integrations.conftest import assert_error, basic

pytestmark = pytest.mark.django_db

SINGLE = {
    "identify": {"userId": "u1", "traits": {"email": "a@example.com"}},
    "track": {"userId": "u1", "event": "Signed Up", "properties": {"plan": "pro"}},
    "page": {"anonymousId": "a1", "name": "Pricing"},
    "screen": {"userId": "u1", "name": "Home"},
    "group": {"userId": "u1", "groupId": "g1", "traits": {"name": "Acme"}},
    "alias": {"userId": "u1", "previousId": "a1"},
}


# --- 200 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(SINGLE))
def test_single_endpoint_answers_success_and_stores_the_message(segment, kind):
    client, integration = segment
    response = client.post(f"/v1/{kind}", {**SINGLE[kind], "messageId": f"m-{kind}"})
    assert response.status_code == 200, response.content
    assert response.json() == {"success": True}
    row = InboxMessage.objects.get()
    assert (row.integration, row.type, row.message_id, row.status) == (integration, kind, f"m-{kind}", "pending")
    assert row.payload["type"] == kind


def test_single_endpoint_takes_the_type_from_the_path(segment):
    client, _ = segment
    response = client.post("/v1/identify", {"type": "track", "userId": "u1", "messageId": "m1"})
    assert response.status_code == 200
    row = InboxMessage.objects.get()
    assert row.type == "identify"
    assert row.payload["type"] == "identify"


def test_track_fields_are_stored_in_their_columns(segment):
    client, _ = segment
    client.post("/v1/track", {"userId": "u1", "anonymousId": "a1", "event": "  Order Completed ", "email": "X@Y.com"})
    row = InboxMessage.objects.get()
    assert (row.user_id, row.anonymous_id, row.event, row.email) == ("u1", "a1", "Order Completed", "x@y.com")


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/import"])
def test_batch_answer_counts_accepted_duplicates_and_rejected_by_index(segment, path):
    client, integration = segment
    batch = [
        {"type": "identify", "userId": "u1", "messageId": "m1"},
        {"type": "track", "userId": "u1", "messageId": "m2"},  # no event
        {"type": "track", "userId": "u1", "event": "E", "messageId": "m3"},
        {"type": "identify", "userId": "u1", "messageId": "m1"},  # duplicate in the request
        {"userId": "u1", "messageId": "m4"},  # no type
        "not an object",
    ]
    response = client.post(path, {"batch": batch})
    assert response.status_code == 200, response.content
    assert response.json() == {
        "success": True,
        "accepted": 2,
        "duplicates": 1,
        "rejected": [
            {
                "index": 1,
                "code": "missing_field",
                "message": "event is required on track calls and must be a non-empty string",
            },
            {
                "index": 4,
                "code": "missing_field",
                "message": "type is required on every message sent to /v1/batch or /v1/destination",
            },
            {"index": 5, "code": "invalid_body", "message": "a message must be a JSON object, not str"},
        ],
    }
    assert sorted(InboxMessage.objects.values_list("message_id", flat=True)) == ["m1", "m3"]
    # Nothing is silently dropped: each refused item is kept for staff, with its body.
    rows = list(RejectedMessage.objects.order_by("index"))
    assert [(r.index, r.code, r.status_code, r.integration) for r in rows] == [
        (1, "missing_field", 400, integration),
        (4, "missing_field", 400, integration),
        (5, "invalid_body", 400, integration),
    ]
    assert json.loads(rows[0].body) == batch[1]
    assert rows[0].path == path


def test_batch_shares_top_level_context_and_sent_at_with_its_items(segment):
    client, _ = segment
    client.post(
        "/v1/batch",
        {
            "batch": [
                {"type": "track", "userId": "u1", "event": "E", "context": {"ip": "1.2.3.4"}},
                {"type": "identify", "userId": "u2"},
            ],
            "context": {"library": {"name": "x"}},
            "sentAt": "2024-01-01T00:00:00Z",
        },
    )
    rows = {r.user_id: r.payload for r in InboxMessage.objects.all()}
    assert rows["u1"]["context"] == {"ip": "1.2.3.4"}  # the item's own context wins
    assert rows["u2"]["context"] == {"library": {"name": "x"}}
    assert rows["u2"]["sentAt"] == "2024-01-01T00:00:00Z"


def test_empty_batch_is_answered(segment):
    client, _ = segment
    response = client.post("/v1/batch", {"batch": []})
    assert response.json() == {"success": True, "accepted": 0, "duplicates": 0, "rejected": []}


# --- 400 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"{", b"", b"   ", b"{'a': 1}", b"\xff\xfe", b'{"a": 1e400}'])
def test_invalid_json_is_400(segment, body):
    client, integration = segment
    body_json = assert_error(client.post("/v1/track", body), 400, "invalid_json")
    assert "JSON" in body_json["message"] or "empty" in body_json["message"]
    rejected = RejectedMessage.objects.get()
    assert (rejected.status_code, rejected.code, rejected.integration, rejected.path) == (
        400,
        "invalid_json",
        integration,
        "/v1/track",
    )


@pytest.mark.parametrize(
    ("path", "message", "expected"),
    [
        ("/v1/identify", {"traits": {"a": 1}}, "userId or anonymousId is required"),
        ("/v1/track", {"event": "E"}, "userId or anonymousId is required"),
        ("/v1/track", {"userId": "u1"}, "event is required on track calls and must be a non-empty string"),
        ("/v1/track", {"userId": "u1", "event": "   "}, "event is required on track calls"),
        ("/v1/track", {"userId": "u1", "event": 5}, "event is required on track calls"),
        ("/v1/group", {"userId": "u1"}, "groupId is required on group calls"),
        ("/v1/alias", {"userId": "u1"}, "previousId is required on alias calls"),
        ("/v1/alias", {"anonymousId": "a1", "previousId": "p1"}, "userId is required on alias calls"),
        ("/v1/destination", {"type": "delete", "anonymousId": "a1"}, "userId is required on delete calls"),
        ("/v1/destination", {"userId": "u1"}, "type is required"),
        ("/v1/batch", {"context": {}}, "batch is required and must be an array of messages"),
        ("/v1/batch", {"batch": {"type": "track"}}, "batch is required and must be an array of messages"),
    ],
)
def test_missing_field_is_400_naming_the_field(segment, path, message, expected):
    client, _ = segment
    body = assert_error(client.post(path, message), 400, "missing_field")
    assert body["message"] == expected or body["message"].startswith(expected)
    assert not InboxMessage.objects.exists()
    assert RejectedMessage.objects.get().code == "missing_field"


@pytest.mark.parametrize(
    ("path", "message", "code", "expected"),
    [
        ("/v1/identify", {"userId": {"id": 1}}, "invalid_field", "userId must be a string, not dict"),
        ("/v1/identify", {"userId": True}, "invalid_field", "userId must be a string, not bool"),
        ("/v1/identify", {"anonymousId": ["a"]}, "invalid_field", "anonymousId must be a string, not list"),
        ("/v1/identify", {"userId": "u" * 256}, "invalid_field", "userId must be at most 255 characters"),
        ("/v1/identify", {"userId": "u1", "messageId": {"x": 1}}, "invalid_field", "messageId must be a string"),
        ("/v1/identify", {"userId": "u1", "traits": ["a"]}, "invalid_field", "traits must be an object"),
        (
            "/v1/track",
            {"userId": "u1", "event": "E", "properties": "x"},
            "invalid_field",
            "properties must be an object",
        ),
        ("/v1/track", {"userId": "u1", "event": "E", "context": 3}, "invalid_field", "context must be an object"),
        ("/v1/group", {"userId": "u1", "groupId": {"g": 1}}, "invalid_field", "groupId must be a string"),
        ("/v1/destination", {"type": "purchase", "userId": "u1"}, "invalid_field", "type must be one of"),
        ("/v1/destination", {"type": 7, "userId": "u1"}, "missing_field", "type is required"),
        ("/v1/track", ["a"], "invalid_body", "the body must be a JSON object (one message)"),
        ("/v1/track", "text", "invalid_body", "the body must be a JSON object (one message)"),
        ("/v1/batch", [{"type": "track"}], "invalid_body", "the body must be a JSON object with a batch array"),
        ("/v1/track", {"userId": "u\u0000", "event": "E"}, "invalid_field", "userId contains a NUL character"),
        (
            "/v1/track",
            {"userId": "u1", "event": "E", "properties": {"a": [1, "\u0000"]}},
            "invalid_field",
            "properties.a[1] contains a NUL character",
        ),
    ],
)
def test_invalid_field_types_are_400_naming_the_field(segment, path, message, code, expected):
    client, _ = segment
    body = assert_error(client.post(path, message), 400, code)
    assert body["message"].startswith(expected), body
    assert not InboxMessage.objects.exists()


def test_batch_item_with_a_nul_character_is_rejected_and_recorded(segment):
    client, _ = segment
    response = client.post(
        "/v1/batch", {"batch": [{"type": "identify", "userId": "u1"}, {"type": "identify", "userId": "\u0000"}]}
    )
    assert response.json()["accepted"] == 1
    assert response.json()["rejected"] == [
        {
            "index": 1,
            "code": "invalid_field",
            "message": "userId contains a NUL character (\\u0000), which is not allowed",
        }
    ]
    # The kept body is JSON text, so the NUL stays escaped and storable on PostgreSQL.
    assert RejectedMessage.objects.get().body == '{"type":"identify","userId":"\\u0000"}'


def test_refused_raw_body_with_nul_bytes_is_still_recorded(segment):
    client, integration = segment
    assert_error(client.post("/v1/track", b'{"userId": "a\x00b"}'), 400, "invalid_json")
    # PostgreSQL text cannot hold NUL: the kept body has it replaced rather than the row lost.
    assert RejectedMessage.objects.get(integration=integration).body == '{"userId": "a\ufffdb"}'


def test_too_many_messages_is_400(segment):
    client, _ = segment
    batch = [{"type": "track", "userId": "u", "event": "E"}] * 2501
    body = assert_error(client.post("/v1/batch", {"batch": batch}), 400, "too_many_messages")
    assert body["message"] == "batch holds 2501 messages; the limit is 2500"
    assert not InboxMessage.objects.exists()


def test_2500_messages_are_accepted(segment):
    client, _ = segment
    batch = [{"type": "track", "userId": "u", "event": "E", "messageId": f"m{i}"} for i in range(2500)]
    response = client.post("/v1/batch", {"batch": batch})
    assert response.json()["accepted"] == 2500
    assert InboxMessage.objects.count() == 2500


# --- 413 -------------------------------------------------------------------------------------


def test_single_message_over_32kb_is_413(segment):
    client, integration = segment
    message = {"userId": "u1", "event": "E", "properties": {"blob": "x" * (32 * 1024)}}
    body = assert_error(client.post("/v1/track", message), 413, "too_large")
    assert body["message"] == "the request body is over 32 KB"
    assert not InboxMessage.objects.exists()
    assert RejectedMessage.objects.get().status_code == 413


def test_single_message_just_under_32kb_is_accepted(segment):
    client, _ = segment
    message = {"userId": "u1", "event": "E", "properties": {"blob": ""}}
    message["properties"]["blob"] = "x" * (32 * 1024 - len(json.dumps(message).encode()))
    assert len(json.dumps(message).encode()) == 32 * 1024
    assert client.post("/v1/track", message).status_code == 200


def test_destination_single_message_over_32kb_is_413(segment):
    client, _ = segment
    message = {"type": "track", "userId": "u1", "event": "E", "properties": {"blob": "x" * (40 * 1024)}}
    body = assert_error(client.post("/v1/destination", message), 413, "too_large")
    assert "32 KB" in body["message"]
    assert not InboxMessage.objects.exists()


def test_batch_item_over_32kb_is_reported_by_index_and_the_rest_stored(segment):
    client, integration = segment
    batch = [
        {"type": "track", "userId": "u1", "event": "Small", "messageId": "m0"},
        {"type": "track", "userId": "u1", "event": "Big", "messageId": "m1", "properties": {"blob": "x" * 33000}},
        {"type": "track", "userId": "u1", "event": "Small", "messageId": "m2"},
    ]
    response = client.post("/v1/batch", {"batch": batch})
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "accepted": 2,
        "duplicates": 0,
        "rejected": [{"index": 1, "code": "too_large", "message": "message is over 32 KB"}],
    }
    rejected = RejectedMessage.objects.get()
    assert (rejected.index, rejected.status_code, rejected.code, rejected.integration) == (
        1,
        413,
        "too_large",
        integration,
    )
    assert sorted(InboxMessage.objects.values_list("message_id", flat=True)) == ["m0", "m2"]


def test_batch_over_500kb_is_413(segment):
    client, _ = segment
    batch = [{"type": "track", "userId": "u1", "event": "E", "properties": {"blob": "x" * 30000}} for _ in range(18)]
    assert len(json.dumps({"batch": batch})) > 500 * 1024
    body = assert_error(client.post("/v1/batch", {"batch": batch}), 413, "too_large")
    assert body["message"] == "the request body is over 500 KB"
    assert not InboxMessage.objects.exists()


def test_gzip_bomb_is_413_not_inflated(segment):
    client, _ = segment
    raw = json.dumps({"userId": "u1", "event": "E", "properties": {"blob": "0" * 5_000_000}}).encode()
    assert_error(client.post("/v1/track", raw, gzip_body=True), 413, "too_large")


def test_gzip_size_limit_applies_to_the_inflated_body(segment):
    client, _ = segment
    message = {"userId": "u1", "event": "E", "properties": {"blob": "x" * 40000}}
    assert_error(client.post("/v1/track", message, gzip_body=True), 413, "too_large")


# --- 415, 405, bad gzip --------------------------------------------------------------------------


def test_unknown_content_encoding_is_415(segment):
    client, _ = segment
    response = client.post("/v1/track", {"userId": "u1", "event": "E"}, headers={"HTTP_CONTENT_ENCODING": "br"})
    body = assert_error(response, 415, "unsupported_encoding")
    assert "br" in body["message"]


def test_corrupt_gzip_is_400(segment):
    client, _ = segment
    response = client.post("/v1/track", b"not gzip at all", headers={"HTTP_CONTENT_ENCODING": "gzip"})
    assert_error(response, 400, "invalid_encoding", "gzip")


def test_get_is_405_in_the_error_shape(segment):
    client, _ = segment
    response = Client().get("/v1/track", HTTP_AUTHORIZATION=basic(client.key))
    assert_error(response, 405, "method_not_allowed", "GET")


def test_accept_header_never_makes_a_406(segment):
    client, _ = segment
    response = client.post("/v1/track", {"userId": "u1", "event": "E"}, headers={"HTTP_ACCEPT": "text/csv"})
    assert response.status_code == 200
    assert response.json() == {"success": True}


# --- 429 -------------------------------------------------------------------------------------


def test_daily_cap_spent_is_429_with_retry_after(db):
    integration, key = make_integration("segment", daily_cap=2)
    client = SegmentClient(key)
    for i in range(2):
        assert client.post("/v1/track", {"userId": "u1", "event": "E", "messageId": f"m{i}"}).status_code == 200
    response = client.post("/v1/track", {"userId": "u1", "event": "E", "messageId": "m2"})
    body = assert_error(response, 429, "rate_limited")
    assert body["message"] == "this integration's daily cap of 2 requests is spent; it resets at 00:00 UTC"
    assert 1 <= int(response["Retry-After"]) <= 86400
    # The refused message is not stored; a batch past the cap is refused whole.
    assert sorted(InboxMessage.objects.values_list("message_id", flat=True)) == ["m0", "m1"]
    response = client.post("/v1/batch", {"batch": [{"type": "identify", "userId": "u9"}]})
    assert_error(response, 429, "rate_limited")
    assert InboxMessage.objects.count() == 2
    # Capped requests are counted, not kept as rows (a client hammering past its cap must not
    # fill the table).
    assert not RejectedMessage.objects.filter(code="rate_limited").exists()
    assert DailyUsage.objects.get(integration=integration).requests == 4


def test_usage_counts_requests_messages_and_rejections_past_the_cap_too(db):
    integration, key = make_integration("segment", daily_cap=2)
    client = SegmentClient(key)
    mixed = {"batch": [{"type": "track", "userId": "u1", "event": "E", "messageId": f"m{i}"} for i in range(2)]}
    mixed["batch"].append({"type": "track", "userId": "u1"})  # no event: rejected by index
    response = client.post("/v1/batch", mixed)
    assert response.json()["accepted"] == 2
    assert RejectedMessage.objects.filter(integration=integration, index=2, code="missing_field").count() == 1
    usage = DailyUsage.objects.get(integration=integration)
    assert (usage.requests, usage.messages, usage.rejected) == (1, 2, 1)

    assert client.post("/v1/track", {"userId": "u1", "event": "E", "messageId": "m2"}).status_code == 200
    # Past the cap, a batch with a bad item is refused whole: counted, its items not kept.
    assert_error(client.post("/v1/batch", mixed), 429, "rate_limited")
    usage.refresh_from_db()
    assert (usage.requests, usage.messages, usage.rejected) == (3, 3, 2)
    assert RejectedMessage.objects.filter(integration=integration).count() == 1
    assert InboxMessage.objects.filter(integration=integration).count() == 3


def test_daily_cap_is_per_integration(db):
    capped, capped_key = make_integration("segment", name="capped", daily_cap=1)
    _, other_key = make_integration("segment", name="other")
    SegmentClient(capped_key).post("/v1/identify", {"userId": "u1"})
    assert SegmentClient(capped_key).post("/v1/identify", {"userId": "u2"}).status_code == 429
    assert SegmentClient(other_key).post("/v1/identify", {"userId": "u2"}).status_code == 200


# --- 503 -------------------------------------------------------------------------------------


def test_store_failure_is_503_and_nothing_is_acknowledged(segment):
    """A real database failure: the inbox table is renamed away inside the test transaction,
    so the insert fails in the database itself. The answer must be 503 in the error shape."""
    client, _ = segment
    table = InboxMessage._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {connection.ops.quote_name(table)} RENAME TO inbox_gone")
    try:
        response = client.post("/v1/track", {"userId": "u1", "event": "E"})
        body = assert_error(response, 503, "unavailable")
        assert body["message"] == "the message could not be stored; retry later"
        batch_response = client.post("/v1/batch", {"batch": [{"type": "identify", "userId": "u1"}]})
        assert_error(batch_response, 503, "unavailable")
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE inbox_gone RENAME TO {connection.ops.quote_name(table)}")
    assert not InboxMessage.objects.exists()
    # The request was rolled back whole: it did not spend the daily count either.
    assert not DailyUsage.objects.exists()


# --- /v1/destination ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["identify", "track", "page", "screen", "group", "alias", "delete"])
def test_destination_takes_one_message_of_any_type(segment, kind):
    client, _ = segment
    message = {**SINGLE.get(kind, {"userId": "u1"}), "type": kind}
    response = client.post("/v1/destination", message)
    assert response.status_code == 200, response.content
    assert response.json() == {"success": True}
    assert InboxMessage.objects.get().type == kind


def test_destination_takes_a_webhooks_actions_array(segment):
    client, _ = segment
    array = [
        {"type": "identify", "userId": "u1", "messageId": "w1"},
        {"type": "delete", "userId": "u2", "messageId": "w2"},
        {"type": "track", "userId": "u3", "messageId": "w3"},
    ]
    response = client.post("/v1/destination", array)
    assert response.json() == {
        "success": True,
        "accepted": 2,
        "duplicates": 0,
        "rejected": [
            {
                "index": 2,
                "code": "missing_field",
                "message": "event is required on track calls and must be a non-empty string",
            }
        ],
    }
    assert sorted(InboxMessage.objects.values_list("type", flat=True)) == ["delete", "identify"]


def webhooks_batch(count: int, blob: int) -> list[dict]:
    """A Webhooks (Actions) batch: its default is 1,000 events a request."""
    return [
        {
            "type": "track",
            "userId": f"u{i}",
            "event": "Order Completed",
            "messageId": f"wh-{i}",
            "properties": {"blob": "x" * blob},
        }
        for i in range(count)
    ]


def test_a_webhooks_actions_batch_over_500kb_is_stored(segment):
    client, _ = segment
    array = webhooks_batch(1000, 3000)
    # Over Django's own default body cap (2.5 MB) too.
    assert 2_621_440 < len(json.dumps(array).encode()) < 4 * 1024 * 1024
    response = client.post("/v1/destination", array)
    assert response.status_code == 200, response.content[:300]
    assert response.json()["accepted"] == 1000
    assert InboxMessage.objects.count() == 1000


def test_a_gzipped_webhooks_actions_batch_inflates_up_to_the_array_limit(segment):
    client, _ = segment
    assert client.post("/v1/destination", webhooks_batch(1000, 3000), gzip_body=True).json()["accepted"] == 1000
    # Over 4 MB once inflated: refused, though far smaller on the wire.
    over = webhooks_batch(1000, 4300)
    body = assert_error(client.post("/v1/destination", over, gzip_body=True), 413, "too_large")
    assert body["message"] == "the request body is over 4 MB"
    assert InboxMessage.objects.count() == 1000


def test_a_destination_array_over_4mb_is_413(segment):
    client, _ = segment
    over = webhooks_batch(1000, 4300)
    assert len(json.dumps(over).encode()) > 4 * 1024 * 1024
    body = assert_error(client.post("/v1/destination", over), 413, "too_large")
    assert body["message"] == "the request body is over 4 MB"
    assert not InboxMessage.objects.exists()


def test_each_message_of_a_destination_array_keeps_the_32kb_limit(segment):
    client, _ = segment
    array = webhooks_batch(3, 10)
    array[1]["properties"]["blob"] = "x" * 33000
    response = client.post("/v1/destination", array)
    assert response.json()["rejected"] == [{"index": 1, "code": "too_large", "message": "message is over 32 KB"}]
    assert sorted(InboxMessage.objects.values_list("message_id", flat=True)) == ["wh-0", "wh-2"]


def test_batch_keeps_500kb_whatever_the_destination_limit(segment):
    client, _ = segment
    body = assert_error(client.post("/v1/batch", {"batch": webhooks_batch(300, 2500)}), 413, "too_large")
    assert body["message"] == "the request body is over 500 KB"


# --- gzip --------------------------------------------------------------------------------------


def test_gzip_bodies_are_accepted_on_single_and_batch(segment):
    client, _ = segment
    assert client.post("/v1/track", {"userId": "u1", "event": "E", "messageId": "g1"}, gzip_body=True).json() == {
        "success": True
    }
    response = client.post(
        "/v1/batch", {"batch": [{"type": "identify", "userId": "u1", "messageId": "g2"}]}, gzip_body=True
    )
    assert response.json()["accepted"] == 1
    assert sorted(InboxMessage.objects.values_list("message_id", flat=True)) == ["g1", "g2"]


def test_gzip_with_writekey_in_the_body(anon_client):
    integration, key = make_integration("segment", name="wk")
    raw = gzip.compress(json.dumps({"writeKey": key, "batch": [{"type": "identify", "userId": "u1"}]}).encode())
    response = Client().post("/v1/batch", data=raw, content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
    assert response.json()["accepted"] == 1
    assert InboxMessage.objects.get().integration == integration


def test_a_second_key_of_the_same_integration_works(segment):
    client, integration = segment
    second = api_key_create(integration=integration)
    assert SegmentClient(second).post("/v1/identify", {"userId": "u1"}).status_code == 200


def nested(levels: int) -> dict:
    """A track message whose JSON nests `levels` objects and arrays deep in all."""
    value: list = []
    for _ in range(levels - 3):
        value = [value]
    return {"type": "track", "userId": "u1", "event": "E", "properties": {"deep": value}}


@pytest.mark.parametrize("path", ["/v1/track", "/v1/destination"])
def test_message_nested_too_deeply_is_400_not_500(segment, path):
    client, _ = segment
    assert client.post(path, nested(254)).status_code == 200
    body = assert_error(client.post(path, nested(255)), 400, "too_deep")
    assert body["message"] == "the message is nested too deeply: at most 254 levels of objects and arrays"
    assert InboxMessage.objects.count() == 1


def test_batch_item_nested_too_deeply_is_reported_by_index(segment):
    client, integration = segment
    # The batch wrapper adds two levels to the body, not to the item.
    response = client.post("/v1/batch", {"batch": [nested(254), nested(255)]})
    assert response.json()["accepted"] == 1
    assert response.json()["rejected"] == [
        {
            "index": 1,
            "code": "too_deep",
            "message": "the message is nested too deeply: at most 254 levels of objects and arrays",
        }
    ]
    assert RejectedMessage.objects.get(integration=integration).index == 1


def test_body_nested_beyond_the_parser_limit_is_invalid_json(segment):
    client, _ = segment
    raw = b'{"userId": "u1", "event": "E", "properties": {"d": ' + b"[" * 1100 + b"]" * 1100 + b"}}"
    assert_error(client.post("/v1/track", raw), 400, "invalid_json")
