"""Segment's Webhooks (Actions) destination, as it posts to /v1/destination: with batching on,
a JSON array of up to 1,000 events in one request, often over 500 KB."""

from __future__ import annotations

import base64

import orjson
import pytest
import requests

from integrations.models import InboxMessage
from tests.conftest import make_integration

pytestmark = [pytest.mark.live]


def webhooks_event(n: int) -> dict:
    """A track event the way Segment forwards it: the fields Segment adds, about 700 bytes."""
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": f"buyer-{n % 97}",
        "anonymousId": f"5e3f1c2a-0b7d-4d7e-9a55-{n:012d}",
        "messageId": f"api-webhooks-actions-{n:06d}",
        "timestamp": "2024-05-01T10:00:00.000Z",
        "originalTimestamp": "2024-05-01T10:00:00.000Z",
        "sentAt": "2024-05-01T10:00:00.120Z",
        "receivedAt": "2024-05-01T10:00:00.250Z",
        "properties": {
            "order_id": f"order-{n}",
            "total": 49.9 + n,
            "currency": "EUR",
            "products": [{"product_id": f"p-{n}", "quantity": 1}],
        },
        "context": {
            "library": {"name": "analytics.js", "version": "next-1.84.3"},
            "page": {
                "path": "/checkout/complete",
                "title": "Thank you",
                "url": "https://shop.example.com/checkout/complete",
            },
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/124.0",
        },
        "integrations": {},
        "channel": "client",
    }


def test_webhooks_actions_array_of_1000_events_over_500_kb_is_accepted(switchyard):
    integration, key = make_integration("segment", name="Webhooks (Actions)")
    events = [webhooks_event(n) for n in range(1000)]
    body = orjson.dumps(events)
    assert 600 * 1024 < len(body) < 800 * 1024  # about 700 KB: over the 500 KB a /v1/batch may carry

    response = requests.post(
        f"{switchyard.url}/v1/destination",
        data=body,
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Segmentio/1.0",
            "Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode(),
        },
        timeout=60,
    )
    assert response.status_code == 200, response.text[:500]
    answer = response.json()
    assert (answer["success"], answer["accepted"], answer["duplicates"], answer["rejected"]) == (True, 1000, 0, [])
    rows = InboxMessage.objects.filter(integration=integration)
    assert rows.count() == 1000
    assert set(rows.values_list("message_id", flat=True)) == {event["messageId"] for event in events}
