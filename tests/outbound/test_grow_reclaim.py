"""Captured visits → contacts → Grow identifies and Reclaim tracks at a real collector, in the seed's shapes."""

from __future__ import annotations

from pathlib import Path

import pytest

from contacts.models import Contact
from integrations.capture.models import Visitor
from integrations.outbound.models import OutboxItem, OutboxStatus
from tests.outbound.support import PRODUCT, capture, drain, event, send, source_integration

pytestmark = pytest.mark.django_db

SEED = Path(__file__).resolve().parents[3] / "shared" / "seeds" / "000_ac61aa2d2ae2b9f2.txt"
GROW_TRAITS = [
    "address_city",
    "address_line_1",
    "address_postal",
    "address_state",
    "clicked_at",
    "created_at",
    "email",
    "email_domain",
    "extra_data",
    "first_name",
    "id",
    "landing_page_domain",
    "landing_page_url",
    "last_name",
    "page_title",
    "referrer",
    "updated_at",
]


def browse_and_identify(client, integration, *, anonymous_id="visitor-0001", email="ada@example.com"):
    response = capture(
        client,
        integration,
        [
            event("page"),
            event("track", event="Product Viewed", properties=PRODUCT, url=PRODUCT["url"], title="Sprinkles"),
            event("track", event="Product Added", properties={**PRODUCT, "cart_id": "cart-1", "quantity": 2}),
        ],
        anonymous_id=anonymous_id,
    )
    assert response.status_code == 200, response.content
    response = capture(
        client,
        integration,
        [event("identify", email=email, traits={"first_name": "Ada", "last_name": "Lovelace"})],
        anonymous_id=anonymous_id,
    )
    assert response.status_code == 200, response.content


def test_a_captured_visitor_becomes_a_contact_and_goes_out_as_grow_and_reclaim(client, collector):
    integration = source_integration(collector.url)
    browse_and_identify(client, integration)
    drain()
    drain()  # the visitor's earlier events waited for the email, and are applied now

    contact = Contact.objects.get(email="ada@example.com")
    visitor = Visitor.objects.get(anonymous_id="visitor-0001")
    assert visitor.contact_id == contact.pk
    assert visitor.landing_page_url == "https://shop.example/landing?utm=x"
    assert visitor.landing_page_domain == "shop.example"
    assert visitor.referrer == "https://search.example/q"
    assert visitor.page_title == "Welcome"

    counts = send()
    assert counts["done"] == 3, counts
    [identify] = collector.received(type="identify")
    assert sorted(identify["traits"]) == GROW_TRAITS
    assert identify["traits"]["email"] == "ada@example.com"
    assert identify["traits"]["email_domain"] == "example.com"
    assert identify["traits"]["first_name"] == "Ada"
    assert identify["traits"]["landing_page_url"] == "https://shop.example/landing?utm=x"
    assert identify["traits"]["id"] == contact.pk
    assert identify["context"]["app"].keys() == {"name", "version"}
    assert identify["messageId"].startswith("api-") and len(identify["messageId"]) == 31

    [viewed] = collector.received(event="Viewed Product Reclaim")
    assert viewed["email"] == "ada@example.com"
    assert viewed["anonymousId"] == identify["anonymousId"]
    props = viewed["properties"]
    assert props["EventSource"] == "Reclaim"
    assert props["ProductID"] == 9229193849 and props["product_id"] == 9229193849
    assert props["Price"] == "47" and props["price"] == 47
    assert props["CurrencyPrice"] == "$47"
    [added] = collector.received(event="Add To Cart Reclaim")
    assert added["properties"]["Quantity"] == 2
    # Identify first: a person's messages go in order.
    order = [m["messageId"] for m in collector.messages]
    assert order.index(identify["messageId"]) < order.index(viewed["messageId"])
    assert OutboxItem.objects.filter(status=OutboxStatus.SENT).count() == 3
