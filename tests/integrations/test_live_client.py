"""The real segment-analytics-python client against a live Switchyard server (`host=`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import segment.analytics as analytics
from segment.analytics.request import APIError

from integrations.keys import api_key_rotate
from integrations.models import InboxMessage
from tests.conftest import make_integration

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def live_client(live_server, transactional_db):
    integration, key = make_integration("segment", name="live")
    errors: list = []
    client = analytics.Client(
        write_key=key,
        host=live_server.url,
        sync_mode=True,
        max_retries=0,
        on_error=lambda error, batch: errors.append(error),
    )
    # sync_mode posts each call before returning; there is no consumer thread to shut down.
    return client, integration, errors


def test_every_call_of_the_real_client_is_stored(live_client):
    client, integration, errors = live_client
    happened = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
    started = datetime.now(UTC)
    client.identify("user-1", {"email": "Ann@Example.com", "plan": "pro"}, message_id="m-identify")
    client.track("user-1", "Order Completed", {"total": 12.5}, message_id="m-track", timestamp=happened)
    client.page("user-1", "Docs", "Pricing", {"url": "https://example.com/pricing"}, message_id="m-page")
    client.screen("user-1", "App", "Home", message_id="m-screen")
    client.group("user-1", "group-9", {"name": "Acme"}, message_id="m-group")
    client.alias("anon-1", "user-1", message_id="m-alias")
    client.track(anonymous_id="anon-2", event="Viewed Product", message_id="m-anon")
    finished = datetime.now(UTC)
    assert errors == []

    rows = {row.message_id: row for row in InboxMessage.objects.filter(integration=integration)}
    assert set(rows) == {"m-identify", "m-track", "m-page", "m-screen", "m-group", "m-alias", "m-anon"}
    identify = rows["m-identify"]
    assert (identify.type, identify.user_id, identify.email) == ("identify", "user-1", "ann@example.com")
    assert identify.payload["traits"] == {"email": "Ann@Example.com", "plan": "pro"}
    assert identify.payload["context"]["library"]["name"] == "analytics-python"
    # The library puts sentAt on the batch, not on each message: it reaches every message.
    assert identify.payload["sentAt"]
    assert "writeKey" not in identify.payload

    track = rows["m-track"]
    assert (track.type, track.event, track.payload["properties"]) == ("track", "Order Completed", {"total": 12.5})
    # An explicit timestamp is kept, corrected as Segment corrects it for the sender's clock
    # (receivedAt - (sentAt - timestamp)): here the clocks agree, so by the time in transit.
    assert happened <= track.timestamp <= happened + (finished - started)
    # Without one, the library stamps the call and sends sentAt alongside; the stored
    # timestamp is that moment, within the time the calls took.
    assert started - timedelta(seconds=1) <= identify.timestamp <= finished + timedelta(seconds=1)
    assert started - timedelta(seconds=1) <= identify.received_at <= finished + timedelta(seconds=1)
    assert identify.payload["receivedAt"]

    page = rows["m-page"]
    assert (page.type, page.event, page.payload["category"]) == ("page", "Pricing", "Docs")
    assert (rows["m-screen"].type, rows["m-screen"].event) == ("screen", "Home")
    assert (rows["m-group"].type, rows["m-group"].payload["groupId"]) == ("group", "group-9")
    alias = rows["m-alias"]
    assert (alias.type, alias.user_id, alias.payload["previousId"]) == ("alias", "user-1", "anon-1")
    anon = rows["m-anon"]
    assert (anon.user_id, anon.anonymous_id) == ("", "anon-2")


def test_batched_flush_through_the_consumer_thread(live_server, transactional_db):
    integration, key = make_integration("segment", name="live-batched")
    client = analytics.Client(write_key=key, host=live_server.url, gzip=True, upload_size=50, max_retries=0)
    for i in range(120):
        client.track(f"user-{i % 7}", "Clicked", {"n": i}, message_id=f"b-{i}")
    client.flush()
    client.shutdown()
    assert InboxMessage.objects.filter(integration=integration).count() == 120


def test_the_client_reads_our_error_answers(live_client):
    client, integration, errors = live_client
    api_key_rotate(integration=integration)
    with pytest.raises(APIError) as caught:
        client.identify("user-1", {"a": 1})
    # The library reads `code` and `message` from our error body.
    assert caught.value.status == 401
    assert caught.value.code == "unauthorized"
    assert "revoked" in caught.value.message
    assert not InboxMessage.objects.exists()


def test_duplicates_from_a_client_retry_are_stored_once(live_client):
    client, integration, errors = live_client
    for _ in range(3):
        client.track("user-1", "Paid", message_id="same-id")
    assert errors == []
    assert InboxMessage.objects.filter(integration=integration, message_id="same-id").count() == 1
