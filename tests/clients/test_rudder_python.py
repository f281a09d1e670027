"""The real rudder-sdk-python client against a live Switchyard (`host=`).

It differs from Segment's Python library where it matters: identify traits travel only in
`context.traits`, and page `name` and `category` at the top level of the message.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils.dateparse import parse_datetime
from rudderstack.analytics import Client
from rudderstack.analytics import client as rudder_client
from rudderstack.analytics import request as rudder_request

from contacts.models import Contact, ContactEvent
from integrations.drain import drain_inbox
from integrations.models import InboxMessage
from tests.conftest import make_integration

pytestmark = [pytest.mark.live]

TWO_HOURS = timedelta(hours=2)


@pytest.fixture
def rudder(switchyard):
    integration, key = make_integration("segment", name="rudder-python")
    # sync_mode posts each call before returning and raises APIError on an error answer.
    client = Client(write_key=key, host=switchyard.url, sync_mode=True, max_retries=0)
    return client, integration


def stored(integration) -> dict[str, InboxMessage]:
    return {row.message_id: row for row in InboxMessage.objects.filter(integration=integration)}


def test_every_call_of_rudder_sdk_python_is_stored(rudder):
    client, integration = rudder
    happened = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
    client.identify("py-1", {"email": "Py@Example.com"}, message_id="rp-i")
    client.track("py-1", "Order Completed", {"total": 12.5}, timestamp=happened, message_id="rp-t")
    client.page("py-1", "Docs", "Pricing", {"url": "https://example.com/pricing"}, message_id="rp-p")
    client.screen("py-1", "App", "Home", message_id="rp-s")
    client.group("py-1", "g-1", {"name": "Acme"}, message_id="rp-g")
    client.alias("anon-1", "py-1", message_id="rp-a")
    client.track(anonymous_id="anon-2", event="Viewed", message_id="rp-anon")

    rows = stored(integration)
    assert set(rows) == {"rp-i", "rp-t", "rp-p", "rp-s", "rp-g", "rp-a", "rp-anon"}
    identify = rows["rp-i"]
    assert (identify.type, identify.user_id, identify.email) == ("identify", "py-1", "py@example.com")
    assert identify.payload["context"]["library"]["name"] == "analytics-python"
    assert abs(rows["rp-t"].timestamp - happened) < timedelta(seconds=5)
    assert rows["rp-t"].payload["properties"] == {"total": 12.5}
    assert (rows["rp-s"].type, rows["rp-s"].event) == ("screen", "Home")
    assert rows["rp-g"].payload["groupId"] == "g-1"
    assert (rows["rp-a"].user_id, rows["rp-a"].payload["previousId"]) == ("py-1", "anon-1")
    assert rows["rp-anon"].anonymous_id == "anon-2"


def test_identify_traits_sent_only_in_context_traits_land_on_the_contact(rudder):
    client, integration = rudder
    client.identify(
        "py-2",
        {"email": "Grace@Example.com", "firstName": "Grace", "lastName": "Hopper", "plan": "pro", "seats": 3},
        message_id="traits",
    )
    row = stored(integration)["traits"]
    assert "traits" not in row.payload  # the library puts them nowhere else
    assert row.payload["context"]["traits"]["firstName"] == "Grace"

    drain_inbox()
    row.refresh_from_db()
    assert row.status == "processed", (row.status, row.reason)
    contact = Contact.objects.get(user_id="py-2")
    assert (contact.email, contact.first_name, contact.last_name) == ("grace@example.com", "Grace", "Hopper")
    assert contact.properties["plan"] == "pro"
    assert contact.properties["seats"] == 3


def test_page_name_and_category_at_the_top_level_are_kept(rudder):
    client, integration = rudder
    client.identify("py-3", {"email": "page@example.com"}, message_id="who")
    client.page(
        "py-3", category="Docs", name="Pricing", properties={"url": "https://example.com/pricing"}, message_id="pg"
    )
    page = stored(integration)["pg"]
    assert (page.payload["name"], page.payload["category"]) == ("Pricing", "Docs")
    assert page.event == "Pricing"

    drain_inbox()
    event = ContactEvent.objects.get(contact__user_id="py-3", type="page")
    assert event.name == "Pricing"
    assert event.properties["name"] == "Pricing"
    assert event.properties["category"] == "Docs"
    assert event.properties["url"] == "https://example.com/pricing"


class FastClock(datetime):
    """datetime whose now() runs two hours ahead: the library's clock on a badly set server."""

    @classmethod
    def now(cls, tz=None):
        return cls.fromtimestamp(datetime.now(UTC).timestamp() + TWO_HOURS.total_seconds(), tz)


def test_a_server_whose_clock_is_two_hours_fast(rudder, switchyard, monkeypatch):
    """Stored at the true time (timestamp = receivedAt - (sentAt - timestamp)): its identify does
    not beat a later one from a server whose clock is right."""
    client, integration = rudder
    monkeypatch.setattr(rudder_client, "datetime", FastClock)
    monkeypatch.setattr(rudder_request, "datetime", FastClock)
    before = datetime.now(UTC)
    client.identify("py-4", {"plan": "skewed"}, message_id="fast-i")
    client.track("py-4", "Clicked", message_id="fast-t")
    after = datetime.now(UTC)
    monkeypatch.undo()

    rows = stored(integration)
    for row in rows.values():
        assert parse_datetime(row.payload["sentAt"]) - after > TWO_HOURS - timedelta(minutes=1)  # it was fast
        assert before - timedelta(seconds=5) <= row.timestamp <= after + timedelta(seconds=5), row.timestamp
    drain_inbox()

    client.identify("py-4", {"plan": "server"}, message_id="true-clock")
    drain_inbox()
    assert Contact.objects.get(user_id="py-4").properties["plan"] == "server"
