"""What goes out when due: switches, suppression, filters, identified elsewhere, checkout completed,
the delay, the group call, the other apps' events, erasure."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from contacts.hashing import email_md5
from contacts.models import Contact
from contacts.services import contact_erase, contact_event_record, contact_unsubscribe, suppressions_add
from integrations.capture.models import Visitor
from integrations.outbound.models import OutboxItem, OutboxSource, OutboxStatus, SyncRun
from tests.conftest import SegmentClient, make_integration
from tests.outbound.support import PRODUCT, capture, drain, event, send, source_integration

pytestmark = pytest.mark.django_db


def visit(
    client,
    source,
    email,
    *,
    anonymous_id,
    url="https://shop.example/landing",
    referrer="https://search.example/q",
    tracks=(),
):
    capture(client, source, [event("page", url=url, referrer=referrer), *tracks], anonymous_id=anonymous_id)
    capture(client, source, [event("identify", email=email)], anonymous_id=anonymous_id)
    drain()
    drain()


def skipped(email: str) -> str:
    return OutboxItem.objects.get(email=email, source=OutboxSource.GROW, type="identify").error


def test_suppressed_contacts_are_never_sent_and_the_skip_is_counted(client, collector):
    source = source_integration(collector.url)
    suppressions_add(emails=["known@example.com"])
    suppressions_add(md5s=[email_md5("hashed@example.com")])
    visit(client, source, "known@example.com", anonymous_id="visitor-a001")
    visit(client, source, "hashed@example.com", anonymous_id="visitor-a002")
    visit(client, source, "new@example.com", anonymous_id="visitor-a003")
    counts = send()
    assert counts["done"] == 1 and counts["skipped"] == 2
    assert [m["traits"]["email"] for m in collector.received(type="identify")] == ["new@example.com"]
    assert skipped("known@example.com") == "suppressed"
    assert skipped("hashed@example.com") == "suppressed"
    assert sum(SyncRun.objects.values_list("skipped", flat=True)) == 2


@pytest.mark.parametrize(
    ("setting", "value", "passes", "fails"),
    [
        ("filter_email_domains", "gmail", "a@gmail.com", "b@yahoo.com"),
        ("filter_landing_url", "/spring-sale", "https://shop.example/spring-sale?x=1", "https://shop.example/home"),
        ("filter_landing_domains", "shop.example", "https://eu.shop.example/", "https://other.example/"),
        ("filter_referrers", "instagram.com", "https://l.instagram.com/?u=1", "https://search.example/"),
    ],
)
def test_custom_sync_filters(client, collector, setting, value, passes, fails):
    source = source_integration(collector.url, **{setting: value})
    for n, sample in enumerate((passes, fails)):
        email = sample if "@" in sample else f"person{n}@example.com"
        url = sample if setting in ("filter_landing_url", "filter_landing_domains") else "https://shop.example/"
        referrer = sample if setting == "filter_referrers" else ""
        visit(client, source, email, anonymous_id=f"visitor-f{n:03d}", url=url, referrer=referrer)
    send()
    sent = [m["traits"]["email"] for m in collector.received(type="identify")]
    assert len(sent) == 1
    failed = OutboxItem.objects.get(status=OutboxStatus.SKIPPED)
    assert failed.error.startswith("filtered:") and setting in failed.error


def test_the_state_filter_reads_the_contacts_address(client, collector):
    source = source_integration(collector.url, filter_states="CA, ny")
    visit(client, source, "west@example.com", anonymous_id="visitor-s001")
    visit(client, source, "east@example.com", anonymous_id="visitor-s002")
    Contact.objects.filter(email="west@example.com").update(address={"state": "ca", "city": "Oakland"})
    Contact.objects.filter(email="east@example.com").update(address={"state": "MA"})
    send()
    [identify] = collector.received(type="identify")
    assert identify["traits"]["email"] == "west@example.com"
    assert identify["traits"]["address_state"] == "ca" and identify["traits"]["address_city"] == "Oakland"


def test_a_contact_that_identifies_itself_elsewhere_during_the_delay_is_not_sent(client, collector):
    source = source_integration(collector.url, send_delay_minutes=15)
    visit(client, source, "ada@example.com", anonymous_id="visitor-e001")
    visit(client, source, "bob@example.com", anonymous_id="visitor-e002")
    assert send()["done"] == 0  # not before the delay
    _, key = make_integration("segment", name="Website")
    SegmentClient(key).post("/v1/identify", {"anonymousId": "web-1", "traits": {"email": "ada@example.com"}})
    drain()
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        counts = send()
    assert counts == {"done": 1, "skipped": 1, "retrying": 0, "failed": 0, "recovered": 0}
    assert [m["traits"]["email"] for m in collector.received(type="identify")] == ["bob@example.com"]
    assert skipped("ada@example.com") == "identified elsewhere: an identify from Website"


def test_a_contact_known_before_capture_is_not_grown(client, collector):
    source = source_integration(collector.url)
    _, key = make_integration("segment", name="App")
    SegmentClient(key).post("/v1/identify", {"userId": "u-1", "traits": {"email": "old@example.com"}})
    drain()
    visit(client, source, "old@example.com", anonymous_id="visitor-k001")
    send()
    assert collector.received(type="identify") == []
    assert skipped("old@example.com").startswith("identified elsewhere: the contact has a userId")


def test_an_order_completed_stops_reclaim(client, collector):
    source = source_integration(collector.url, grow_enabled=False, send_delay_minutes=15)
    added = {**PRODUCT, "cart_id": "cart-9"}
    visit(
        client,
        source,
        "buyer@example.com",
        anonymous_id="visitor-o001",
        tracks=[event("track", event="Product Added", properties=added)],
    )
    visit(
        client,
        source,
        "browser@example.com",
        anonymous_id="visitor-o002",
        tracks=[event("track", event="Product Added", properties=added)],
    )
    capture(
        client,
        source,
        [event("track", event="Order Completed", properties={"cart_id": "cart-9", "total": 47})],
        anonymous_id="visitor-o001",
    )
    drain()
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        send()
    [reclaim] = collector.received(event="Add To Cart Reclaim")
    assert reclaim["email"] == "browser@example.com"
    stopped = OutboxItem.objects.get(email="buyer@example.com", source=OutboxSource.RECLAIM)
    assert stopped.status == OutboxStatus.SKIPPED and "checkout completed" in stopped.error


def test_switching_a_part_off_during_the_delay_skips_its_messages(client, collector):
    source = source_integration(collector.url)
    visit(
        client,
        source,
        "ada@example.com",
        anonymous_id="visitor-t001",
        tracks=[event("track", event="Product Viewed", properties=PRODUCT)],
    )
    source.settings = {**source.settings, "grow_enabled": False, "reclaim_enabled": False}
    source.save()
    send()
    assert collector.messages == []
    assert sorted(OutboxItem.objects.values_list("error", flat=True)) == [
        "Grow is switched off",
        "Reclaim is switched off",
    ]


def test_a_group_id_adds_a_group_call_after_the_identify(client, collector):
    source = source_integration(collector.url, group_id="retention-leads")
    visit(client, source, "ada@example.com", anonymous_id="visitor-g001")
    send()
    assert [m["type"] for m in collector.messages] == ["identify", "group"]
    group = collector.messages[1]
    assert group["groupId"] == "retention-leads"
    assert group["anonymousId"] == collector.messages[0]["anonymousId"]


def test_the_other_apps_events_go_out_when_switched_on(client, collector):
    source = source_integration(collector.url, send_survey_responses=True, send_unsubscribes=True)
    contact = Contact.objects.create(email="ann@example.com")
    contact_event_record(contact=contact, name="Survey Responded", properties={"score": 9, "campaign": "NPS"})
    contact_event_record(contact=contact, name="Affiliate Conversion Approved", properties={"amount": 10})
    contact_unsubscribe(contacts=[contact], reason="clicked unsubscribe")
    send()
    names = [m["event"] for m in collector.received(type="track")]
    assert names == ["Survey Responded", "Unsubscribed"]
    survey = collector.received(event="Survey Responded")[0]
    assert survey["properties"] == {"score": 9, "campaign": "NPS"} and survey["email"] == "ann@example.com"
    assert collector.received(event="Unsubscribed")[0]["properties"] == {"reason": "clicked unsubscribe"}
    assert OutboxItem.objects.filter(integration=source).count() == 2


def test_erasure_skips_queued_messages_and_redacts_the_rest(client, collector):
    source = source_integration(collector.url, send_delay_minutes=15)
    visit(
        client,
        source,
        "gone@example.com",
        anonymous_id="visitor-x001",
        tracks=[event("track", event="Product Viewed", properties=PRODUCT)],
    )
    contact_erase(email="gone@example.com", requested_by="test")
    items = list(OutboxItem.objects.all())
    assert {i.status for i in items} == {OutboxStatus.SKIPPED}
    assert {i.email for i in items} == {""}
    assert all(i.payload == {"redacted": True} for i in items)
    assert not Visitor.objects.exists()
