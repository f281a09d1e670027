"""The capture script and its endpoint: origins, keys, CORS, full checks, rate limits, durability."""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrations.models import InboxMessage, RejectedMessage
from integrations.outbound.services import integration_remove
from tests.outbound.support import ORIGIN, PRODUCT, capture, event, site_key, source_integration

pytestmark = pytest.mark.django_db


@pytest.fixture
def source():
    return source_integration("http://127.0.0.1:9")


def test_the_script_is_small_and_has_no_dependencies(client):
    response = client.get("/capture.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    body = response.content.decode()
    assert len(response.content) < 8 * 1024
    assert "import " not in body and "require(" not in body
    for piece in ("keepalive: true", "sendBeacon", "data-switchyard-capture", "sy_aid"):
        assert piece in body


def test_events_from_an_allowed_origin_are_stored_before_the_answer(client, source):
    response = capture(
        client,
        source,
        [
            event("page"),
            event("track", event="Product Viewed", properties=PRODUCT),
            event("identify", email="Ada@Example.com", traits={"first_name": "Ada"}),
        ],
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"success": True, "accepted": 3, "duplicates": 0}
    rows = {row.type: row for row in InboxMessage.objects.filter(integration=source)}
    assert set(rows) == {"page", "track", "identify"}
    assert rows["identify"].email == "ada@example.com"
    assert rows["track"].event == "Product Viewed"
    page = rows["page"].payload
    assert page["anonymousId"] == "visitor-0001"
    assert page["context"]["page"]["url"] == "https://shop.example/landing?utm=x"
    assert page["context"]["page"]["referrer"] == "https://search.example/q"
    assert rows["track"].payload["properties"]["price"] == 47


def test_a_repeated_message_is_stored_once(client, source):
    same = event("page")
    capture(client, source, [same])
    response = capture(client, source, [same])
    assert response.json()["duplicates"] == 1
    assert InboxMessage.objects.filter(integration=source).count() == 1


@pytest.mark.parametrize(
    ("origin", "status", "code"),
    [("https://evil.example", 403, "origin_not_allowed"), ("", 403, "origin_not_allowed")],
)
def test_only_allowed_origins_may_post(client, source, origin, status, code):
    response = capture(client, source, [event("page")], origin=origin)
    assert response.status_code == status
    assert response.json()["code"] == code
    assert not InboxMessage.objects.exists()


def test_an_unknown_or_removed_key_gets_401(client, source):
    assert capture(client, source, [event("page")], key="sk_" + "x" * 24).status_code == 401
    integration_remove(integration=source, actor="test")
    response = capture(client, source, [event("page")])
    assert response.status_code == 401
    assert "key" in response.json()["message"]


def test_cors_answers_only_the_integrations_origins(client, source):
    url = f"/capture/events?key={site_key(source)}"
    preflight = {"HTTP_ACCESS_CONTROL_REQUEST_METHOD": "POST", "HTTP_ACCESS_CONTROL_REQUEST_HEADERS": "content-type"}
    allowed = client.options(url, HTTP_ORIGIN=ORIGIN, **preflight)
    assert allowed.status_code == 200
    assert allowed["Access-Control-Allow-Origin"] in ("*", ORIGIN)
    other = client.options(url, HTTP_ORIGIN="https://evil.example", **preflight)
    assert "Access-Control-Allow-Origin" not in other
    answer = capture(client, source, [event("page")])
    assert answer["Access-Control-Allow-Origin"] in ("*", ORIGIN)


@pytest.mark.parametrize(
    ("events", "field"),
    [
        ([{"type": "page"}], "events[0].messageId"),
        ([event("page", url="javascript:alert(1)")], "events[0].url"),
        ([event("nonsense")], "events[0].type"),
        ([event("track", event="Signed Up")], "events[0].event"),
        (
            [event("track", event="Product Viewed", properties={**PRODUCT, "price": "cheap"})],
            "events[0].properties.price",
        ),
        (
            [event("track", event="Product Viewed", properties={**PRODUCT, "currency": "dollars"})],
            "events[0].properties.currency",
        ),
        (
            [event("track", event="Product Added", properties={**PRODUCT, "quantity": -1})],
            "events[0].properties.quantity",
        ),
        ([event("track", event="Checkout Started", properties={"value": 10})], "events[0].properties"),
        ([event("track", event="Product Viewed", properties={"products": "many"})], "events[0].properties"),
        ([event("identify", email="not-an-email")], "events[0].email"),
        ([event("identify")], "events[0].email"),
        ([event("identify", email="a@b.example", traits={"first_name": {"x": 1}})], "events[0].traits.first_name"),
        ([event("page"), event("page", timestamp="yesterday")], "events[1].timestamp"),
        ([event("page")] * 21, "events"),
        ([], "events"),
    ],
)
def test_bad_input_gets_a_400_naming_the_field_and_nothing_is_stored(client, source, events, field):
    response = capture(client, source, events)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["success"] is False
    assert body["message"].startswith(field), body
    assert not InboxMessage.objects.filter(integration=source).exists()
    assert RejectedMessage.objects.filter(integration=source).exists()


def test_one_bad_event_refuses_the_whole_request(client, source):
    response = capture(client, source, [event("page"), event("identify", email="ada@example.com"), event("bad")])
    assert response.status_code == 400
    assert response.json()["message"].startswith("events[2].type")
    assert not InboxMessage.objects.filter(integration=source).exists()


def test_bad_anonymous_id_and_json(client, source):
    response = capture(client, source, [event("page")], anonymous_id="x")
    assert response.status_code == 400 and response.json()["message"].startswith("anonymousId")
    url = f"/capture/events?key={site_key(source)}"
    response = client.post(url, data=b"{not json", content_type="text/plain", HTTP_ORIGIN=ORIGIN)
    assert response.status_code == 400 and response.json()["code"] == "invalid_json"


def test_a_large_body_gets_413_and_gzip_is_accepted(client, source):
    url = f"/capture/events?key={site_key(source)}"
    big = {"anonymousId": "visitor-0001", "events": [event("page", title="x" * 400) for _ in range(200)]}
    response = client.post(url, data=json.dumps(big), content_type="text/plain", HTTP_ORIGIN=ORIGIN)
    assert response.status_code == 413
    small = {"anonymousId": "visitor-0001", "events": [event("page")]}
    response = client.post(
        url,
        data=gzip.compress(json.dumps(small).encode()),
        content_type="text/plain",
        HTTP_ORIGIN=ORIGIN,
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert response.status_code == 200


def test_requests_are_limited_per_address_and_per_visitor(client):
    source = source_integration("http://127.0.0.1:9", capture_rate_limit=3)
    answers = [capture(client, source, [event("page")], REMOTE_ADDR="10.0.0.1").status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    limited = capture(client, source, [event("page")], REMOTE_ADDR="10.0.0.1")
    assert int(limited["Retry-After"]) >= 1
    # The same visitor from another address is limited too; another visitor is not.
    assert capture(client, source, [event("page")], REMOTE_ADDR="10.0.0.2").status_code == 429
    other = capture(client, source, [event("page")], anonymous_id="visitor-0002", REMOTE_ADDR="10.0.0.3")
    assert other.status_code == 200
    assert InboxMessage.objects.filter(integration=source).count() == 4


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
EVENT = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["page", "track", "identify", "x"]) | JSON,
        "messageId": st.text(max_size=70) | JSON,
        "timestamp": st.text(max_size=30) | JSON,
        "url": st.sampled_from(["https://shop.example/a", "ftp://x", ""]) | JSON,
        "event": st.sampled_from(["Product Viewed", "Checkout Started", "Order Completed"]) | JSON,
        "properties": st.dictionaries(
            st.sampled_from(["price", "quantity", "currency", "products", "line_items", "cart_id", "x"]), JSON
        )
        | JSON,
        "email": st.emails() | JSON,
        "traits": JSON,
    },
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.fixed_dictionaries(
        {"anonymousId": st.just("visitor-fuzz-1") | JSON, "events": st.lists(EVENT, max_size=3) | JSON}
    )
)
def test_hostile_bodies_never_get_a_5xx(client, source, body):
    url = f"/capture/events?key={site_key(source)}"
    response = client.post(url, data=json.dumps(body), content_type="text/plain", HTTP_ORIGIN=ORIGIN)
    assert response.status_code in (200, 400, 413), (response.status_code, response.content)
