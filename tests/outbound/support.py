"""Helpers for the outbound and capture tests: a segment_source integration pointed at a real
collector, the capture endpoint as the script calls it, and the queue run in the foreground."""

from __future__ import annotations

import json
import uuid

from common.workqueue import run_due
from integrations.drain import drain_inbox
from integrations.outbound.sending import WORK_TYPE
from integrations.services import integration_create

WRITE_KEY = "wk-test-0123456789"
ORIGIN = "https://shop.example"


def source_integration(endpoint: str, *, name: str = "Retention", **settings):
    values = {
        "write_key": WRITE_KEY,
        "endpoint": endpoint,
        "grow_enabled": "true",
        "reclaim_enabled": "true",
        "send_delay_minutes": "0",
        "allowed_origins": ORIGIN,
    }
    values.update({k: str(v) if not isinstance(v, str) else v for k, v in settings.items()})
    integration, _ = integration_create(kind="segment_source", name=name, settings=values)
    integration.refresh_from_db()
    return integration


def site_key(integration) -> str:
    return integration.settings["site_key"]


def event(kind: str, **fields) -> dict:
    base = {
        "type": kind,
        "messageId": uuid.uuid4().hex,
        "url": "https://shop.example/landing?utm=x",
        "title": "Welcome",
        "referrer": "https://search.example/q",
    }
    base.update(fields)
    return base


def capture(
    client,
    integration,
    events: list[dict],
    *,
    anonymous_id: str = "visitor-0001",
    origin: str = ORIGIN,
    key=None,
    **extra,
):
    body = {"anonymousId": anonymous_id, "events": events}
    headers = {"HTTP_ORIGIN": origin} if origin else {}
    headers.update(extra)
    return client.post(
        f"/capture/events?key={key or site_key(integration)}",
        data=json.dumps(body),
        content_type="text/plain",
        **headers,
    )


def drain():
    return drain_inbox(max_seconds=30)


def send():
    """Run the outbound queue once (what is due now), as process_due does."""
    return run_due(types=[WORK_TYPE], max_seconds=60)[WORK_TYPE]


PRODUCT = {
    "product_id": "9229193849",
    "sku": "fylqm75",
    "name": "Chocolate Sprinkles",
    "brand": "Coffee Cake",
    "price": 47,
    "currency": "USD",
    "image_url": "https://img.example/300.png",
    "url": "https://shop.example/products/sprinkles",
}


def populate_outbound() -> object:
    """One of each outbound row for the admin tests, made through the real pipeline: a
    segment_source integration, a captured visitor who gave an email (a contact, a queued Grow
    identify), and a test send to a closed port (a failed item, its attempt, a sync run)."""
    from django.test import Client

    from integrations.outbound.services import send_test

    integration = source_integration("http://127.0.0.1:9", name="Retention.com")
    capture(
        Client(),
        integration,
        [event("page"), event("identify", email="captured@example.com")],
        anonymous_id="visitor-admin-1",
    )
    drain()
    send_test(integration=integration)
    return integration


def store_captured(integration, count: int) -> None:
    """`count` captured contacts, stored in bulk: each a contact and the visitor it came from."""
    from datetime import timedelta

    from common import clock
    from common.bulk import bulk_insert
    from contacts.models import Contact
    from integrations.capture.models import Visitor

    now = clock.now()
    for start in range(0, count, 5000):
        contacts = [
            Contact(email=f"c{n}@example.com", source=integration, created_at=now, updated_at=now)
            for n in range(start, min(start + 5000, count))
        ]
        bulk_insert(Contact, contacts)
        bulk_insert(
            Visitor,
            [
                Visitor(
                    integration=integration,
                    anonymous_id=f"visitor-{c.pk}",
                    contact_id=c.pk,
                    email=c.email,
                    first_seen_at=now - timedelta(minutes=5),
                    last_seen_at=now,
                    landing_page_url="https://shop.example/landing",
                    landing_page_domain="shop.example",
                    identified_at=now,
                    created_at=now,
                )
                for c in contacts
            ],
        )
