"""What analytics.js sends from a customer's site: one-letter paths, text/plain bodies with the
writeKey inside, cross-origin from the page's own origin."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from integrations.models import InboxMessage
from tests.conftest import make_integration

pytestmark = pytest.mark.django_db

ORIGIN = {"HTTP_ORIGIN": "https://shop.example.com"}


def browser_post(path: str, body: dict):
    # analytics.js posts text/plain (a CORS "simple request": no preflight) with the key in the body.
    return Client().post(path, data=json.dumps(body), content_type="text/plain", **ORIGIN)


@pytest.mark.parametrize(
    ("path", "kind", "message"),
    [
        ("/v1/t", "track", {"event": "Viewed Product", "properties": {"sku": "a-1"}}),
        ("/v1/i", "identify", {"traits": {"email": "a@example.com"}}),
        ("/v1/p", "page", {"name": "Home"}),
        ("/v1/s", "screen", {"name": "Home"}),
        ("/v1/g", "group", {"groupId": "g1"}),
        ("/v1/a", "alias", {"previousId": "anon-1"}),
    ],
)
def test_analytics_js_one_letter_paths_store_their_type(segment, path, kind, message):
    client, _ = segment
    body = {**message, "userId": "u1", "anonymousId": "anon-1", "writeKey": client.key, "messageId": f"ajs-{kind}"}
    response = browser_post(path, body)
    assert response.status_code == 200, response.content
    assert response.json() == {"success": True}
    assert response["Access-Control-Allow-Origin"] == "*"
    assert InboxMessage.objects.get(message_id=f"ajs-{kind}").type == kind


def test_analytics_js_batches_to_v1_b(segment):
    client, _ = segment
    body = {
        "writeKey": client.key,
        "batch": [
            {"type": "track", "event": "A", "userId": "u1", "messageId": "b-1"},
            {"type": "page", "name": "Home", "anonymousId": "x", "messageId": "b-2"},
        ],
    }
    response = browser_post("/v1/b", body)
    assert response.status_code == 200
    assert response.json()["accepted"] == 2
    assert set(InboxMessage.objects.values_list("message_id", flat=True)) == {"b-1", "b-2"}


@pytest.mark.parametrize("path", ["/v1/track/", "/v1/batch/", "/v1/destination/", "/v1/t/"])
def test_a_trailing_slash_is_the_same_endpoint(segment, path):
    client, _ = segment
    message = {"type": "track", "event": "E", "userId": "u1", "messageId": "slash"}
    body = {"batch": [message]} if "batch" in path else message
    assert client.post(path, body).status_code == 200
    assert InboxMessage.objects.get().message_id == "slash"


def test_refusals_are_readable_cross_origin_too(segment):
    response = browser_post("/v1/t", {"event": "E", "userId": "u1", "writeKey": "nope.nope"})
    assert response.status_code == 401
    assert response["Access-Control-Allow-Origin"] == "*"
    response = browser_post("/v1/t", {"userId": "u1", "writeKey": segment[0].key})
    assert response.status_code == 400
    assert response["Access-Control-Allow-Origin"] == "*"


def test_a_spent_cap_tells_analytics_js_when_to_come_back(db):
    _, key = make_integration("segment", daily_cap=1)
    assert browser_post("/v1/t", {"event": "E", "userId": "u1", "writeKey": key}).status_code == 200
    response = browser_post("/v1/b", {"writeKey": key, "batch": [{"type": "track", "event": "E", "userId": "u1"}]})
    assert response.status_code == 429
    assert 1 <= int(response["X-RateLimit-Reset"]) <= 86400
    assert response["X-RateLimit-Reset"] == response["Retry-After"]
    # Readable by the page's script, which runs on another origin.
    exposed = {h.strip().lower() for h in response["Access-Control-Expose-Headers"].split(",")}
    assert {"retry-after", "x-ratelimit-reset"} <= exposed


# Every header a client library puts on a cross-origin post: analytics.js (Authorization from
# the writeKey, X-Retry-Count on retries), RudderStack's browser SDK (AnonymousId, SentAt, Rsa-*).
LIBRARY_HEADERS = {
    "authorization",
    "content-type",
    "content-encoding",
    "x-signature",
    "x-retry-count",
    "anonymousid",
    "sentat",
    "rsa-retry-attempt",
}


@pytest.mark.parametrize("path", ["/v1/track", "/v1/t", "/v1/batch", "/v1/b", "/v1/destination", "/v1//t"])
def test_cors_preflight_allows_every_header_the_libraries_send(db, path):
    response = Client().options(
        path,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type, x-retry-count",
        **ORIGIN,
    )
    assert response.status_code in (200, 204)
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert int(response["Access-Control-Max-Age"]) >= 3600
    allowed = {h.strip().lower() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert LIBRARY_HEADERS <= allowed
    # Any header a site adds through analytics.js's `headers` setting (no credentials are used).
    assert "*" in allowed
    assert "Access-Control-Allow-Credentials" not in response
    assert not InboxMessage.objects.exists()


def test_a_retry_with_x_retry_count_is_stored_and_readable_cross_origin(segment):
    client, _ = segment
    message = {"type": "track", "event": "E", "userId": "u1", "messageId": "retried"}
    response = client.post("/v1/t", message, headers={**ORIGIN, "HTTP_X_RETRY_COUNT": "2"})
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    assert InboxMessage.objects.get().message_id == "retried"


def test_a_plain_options_names_the_methods(db):
    response = Client().options("/v1/track")
    assert response.status_code in (200, 204)
    assert response["Allow"] == "POST, OPTIONS"


def test_a_405_names_the_methods_cross_origin_too(db):
    response = Client().get("/v1/track", **ORIGIN)
    assert response.status_code == 405
    assert response["Allow"] == "POST, OPTIONS"
    assert response["Access-Control-Allow-Origin"] == "*"


def test_staff_pages_do_not_answer_cross_origin(staff):
    response = staff.get("/api/v1/contacts/", **ORIGIN)
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response
    preflight = Client().options("/api/v1/contacts/", HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET", **ORIGIN)
    assert "Access-Control-Allow-Origin" not in preflight


@pytest.mark.parametrize(
    ("path", "kind"),
    [("/v1//t", "track"), ("/v1//track", "track"), ("/v1//b", "batch"), ("/v1///i", "identify"), ("/v1//p/", "page")],
)
def test_an_api_host_ending_in_a_slash_still_reaches_the_endpoint(segment, path, kind):
    # analytics.js with apiHost "switchyard.example.com/v1/" posts to /v1//t.
    client, _ = segment
    message = {"type": kind, "event": "E", "userId": "u1", "messageId": f"slash-{kind}"}
    if kind == "batch":
        message = {"batch": [{**message, "type": "track"}]}
    response = browser_post(path, {**message, "writeKey": client.key})
    assert response.status_code == 200, response.content
    assert response["Access-Control-Allow-Origin"] == "*"
    row = InboxMessage.objects.get()
    assert row.type == ("track" if kind == "batch" else kind)


def test_doubled_slashes_elsewhere_are_left_alone(staff):
    assert staff.get("/api//v1/contacts/").status_code == 404


def test_aliases_stay_out_of_the_schema(staff):
    paths = staff.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    assert "/v1/track" in paths and "/v1/batch" in paths
    assert not [p for p in paths if p in ("/v1/t", "/v1/b") or (p.startswith("/v1/") and p.endswith("/"))]
