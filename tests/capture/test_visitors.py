"""Visitor → contact: the first captured visit, the email that makes a contact, waiting events."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from contacts.models import Contact, ContactEvent
from integrations.capture.models import Visitor
from integrations.models import InboxMessage
from integrations.outbound.models import OutboxItem, OutboxSource
from tests.outbound.support import PRODUCT, capture, drain, event, source_integration

pytestmark = pytest.mark.django_db


def iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def source():
    return source_integration("http://127.0.0.1:9", send_delay_minutes=15)


def test_the_first_visit_is_the_landing_page(client, source):
    now = timezone.now()
    capture(client, source, [event("page", url="https://shop.example/second", timestamp=iso(now))])
    capture(
        client,
        source,
        [
            event(
                "page",
                url="https://blog.shop.example/first",
                title="First",
                referrer="https://ads.example/c",
                timestamp=iso(now - timedelta(minutes=5)),
            )
        ],
    )
    capture(
        client, source, [event("page", url="https://shop.example/third", timestamp=iso(now + timedelta(minutes=1)))]
    )
    drain()
    visitor = Visitor.objects.get(anonymous_id="visitor-0001")
    assert visitor.landing_page_url == "https://blog.shop.example/first"
    assert visitor.landing_page_domain == "blog.shop.example"
    assert visitor.referrer == "https://ads.example/c"
    assert visitor.page_title == "First"
    assert visitor.contact_id is None


def test_an_email_makes_a_contact_and_the_waiting_events_follow(client, source):
    capture(client, source, [event("page"), event("track", event="Product Viewed", properties=PRODUCT)])
    drain()
    assert set(InboxMessage.objects.filter(integration=source).values_list("status", flat=True)) == {"waiting"}
    capture(
        client,
        source,
        [event("identify", email="Grace@Example.com", traits={"first_name": "Grace", "last_name": "Hopper"})],
    )
    drain()
    drain()
    contact = Contact.objects.get(email="grace@example.com")
    assert (contact.first_name, contact.last_name) == ("Grace", "Hopper")
    assert contact.source_id == source.pk
    assert set(InboxMessage.objects.filter(integration=source).values_list("status", flat=True)) == {"processed"}
    assert set(ContactEvent.objects.filter(contact=contact).values_list("name", flat=True)) >= {"Product Viewed"}
    visitor = Visitor.objects.get(anonymous_id="visitor-0001")
    assert visitor.contact_id == contact.pk and visitor.email == "grace@example.com"
    assert visitor.identified_at is not None
    sources = sorted(OutboxItem.objects.filter(contact=contact).values_list("source", flat=True))
    assert sources == [OutboxSource.GROW, OutboxSource.RECLAIM]


def test_grow_and_reclaim_are_due_after_the_delay(client, source):
    capture(client, source, [event("track", event="Product Viewed", properties=PRODUCT)])
    capture(client, source, [event("identify", email="ada@example.com")])
    drain()
    drain()
    grow = OutboxItem.objects.get(source=OutboxSource.GROW)
    reclaim = OutboxItem.objects.get(source=OutboxSource.RECLAIM)
    visitor = Visitor.objects.get()
    assert grow.next_attempt_at == visitor.identified_at + timedelta(minutes=15)
    # Counted from the identification, which came after the product view.
    assert reclaim.next_attempt_at == visitor.identified_at + timedelta(minutes=15)
    assert reclaim.event_at < visitor.identified_at


def test_two_devices_of_one_person_are_one_contact_and_one_grow(client, source):
    capture(client, source, [event("identify", email="ada@example.com")], anonymous_id="laptop-00001")
    capture(client, source, [event("identify", email="ada@example.com")], anonymous_id="phone-000001")
    drain()
    assert Contact.objects.filter(email="ada@example.com").count() == 1
    assert Visitor.objects.filter(contact__email="ada@example.com").count() == 2
    assert OutboxItem.objects.filter(source=OutboxSource.GROW, type="identify").count() == 1


def test_a_reclaim_event_goes_once_per_product_per_day(client, source):
    capture(client, source, [event("identify", email="ada@example.com")])
    capture(
        client,
        source,
        [
            event("track", event="Product Viewed", properties=PRODUCT),
            event("track", event="Product Viewed", properties=PRODUCT),
            event("track", event="Product Viewed", properties={**PRODUCT, "product_id": "other"}),
            event("track", event="Checkout Started", properties={"cart_id": "c1", "value": 10}),
            event("track", event="Checkout Started", properties={"cart_id": "c1", "value": 12}),
        ],
    )
    drain()
    events = sorted(OutboxItem.objects.filter(source=OutboxSource.RECLAIM).values_list("event", flat=True))
    assert events == ["Checkout Started Reclaim", "Viewed Product Reclaim", "Viewed Product Reclaim"]


def test_switched_off_parts_queue_nothing(client):
    source = source_integration("http://127.0.0.1:9", grow_enabled=False, reclaim_enabled=False)
    capture(
        client,
        source,
        [event("identify", email="ada@example.com"), event("track", event="Product Viewed", properties=PRODUCT)],
    )
    drain()
    assert Contact.objects.filter(email="ada@example.com").exists()
    assert not OutboxItem.objects.exists()
