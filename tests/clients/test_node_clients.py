"""The real Node libraries, @segment/analytics-node and @rudderstack/rudder-sdk-node, against a
live Switchyard: tests/clients/send.js makes the calls, flushes and exits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import segment.analytics as segment_python
from django.utils.dateparse import parse_datetime

from contacts.models import Contact
from integrations.drain import drain_inbox
from integrations.models import InboxMessage
from tests.clients.conftest import needs_node_package, run_node
from tests.conftest import make_integration

pytestmark = [pytest.mark.live]

SEGMENT_NODE = needs_node_package("@segment/analytics-node")
RUDDER_NODE = needs_node_package("@rudderstack/rudder-sdk-node")
TWO_HOURS = timedelta(hours=2)


def stored(integration) -> dict[str, InboxMessage]:
    return {row.message_id: row for row in InboxMessage.objects.filter(integration=integration)}


def every_kind(prefix: str, happened: datetime) -> list:
    return [
        [
            "identify",
            {"userId": "n-1", "traits": {"email": "Node@Example.com", "plan": "pro"}, "messageId": f"{prefix}-i"},
        ],
        [
            "track",
            {
                "userId": "n-1",
                "event": "Order Completed",
                "properties": {"total": 12.5},
                "timestamp": {"$date": happened.isoformat()},
                "messageId": f"{prefix}-t",
            },
        ],
        ["page", {"userId": "n-1", "category": "Docs", "name": "Pricing", "messageId": f"{prefix}-p"}],
        ["screen", {"userId": "n-1", "name": "Home", "messageId": f"{prefix}-s"}],
        ["group", {"userId": "n-1", "groupId": "g-1", "traits": {"name": "Acme"}, "messageId": f"{prefix}-g"}],
        ["alias", {"userId": "n-1", "previousId": "anon-1", "messageId": f"{prefix}-a"}],
        ["track", {"anonymousId": "anon-2", "event": "Viewed", "messageId": f"{prefix}-anon"}],
    ]


@SEGMENT_NODE
def test_every_call_of_analytics_node_is_stored(switchyard):
    integration, key = make_integration("segment", name="analytics-node")
    happened = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
    calls = every_kind("sn", happened)
    result = run_node({"library": "analytics-node", "host": switchyard.url, "writeKey": key, "calls": calls})
    assert result["errors"] == []
    assert result["statuses"] and set(result["statuses"]) == {200}

    rows = stored(integration)
    assert set(rows) == {call[1]["messageId"] for call in calls}
    identify = rows["sn-i"]
    assert (identify.type, identify.user_id, identify.email) == ("identify", "n-1", "node@example.com")
    assert identify.payload["traits"] == {"email": "Node@Example.com", "plan": "pro"}
    assert identify.payload["context"]["library"]["name"] == "@segment/analytics-node"
    assert identify.payload["sentAt"]  # sent on the batch, it reaches each message
    assert abs(rows["sn-t"].timestamp - happened) < timedelta(seconds=5)  # the caller's date, clock-corrected
    assert (rows["sn-p"].event, rows["sn-p"].payload["category"]) == ("Pricing", "Docs")
    assert (rows["sn-s"].type, rows["sn-g"].payload["groupId"], rows["sn-a"].payload["previousId"]) == (
        "screen",
        "g-1",
        "anon-1",
    )
    assert rows["sn-anon"].anonymous_id == "anon-2"


@RUDDER_NODE
def test_every_call_of_rudder_sdk_node_is_stored(switchyard):
    integration, key = make_integration("segment", name="rudder-node")
    happened = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
    calls = every_kind("rn", happened)
    result = run_node({"library": "rudder-sdk-node", "host": switchyard.url, "writeKey": key, "calls": calls})
    assert result["errors"] == []

    rows = stored(integration)
    assert set(rows) == {call[1]["messageId"] for call in calls}
    identify = rows["rn-i"]
    assert (identify.user_id, identify.email) == ("n-1", "node@example.com")
    assert identify.payload["context"]["traits"] == {"email": "Node@Example.com", "plan": "pro"}
    assert identify.payload["context"]["library"]["name"] == "analytics-node"
    assert abs(rows["rn-t"].timestamp - happened) < timedelta(seconds=5)  # the caller's date, clock-corrected
    assert (rows["rn-p"].event, rows["rn-p"].payload["category"]) == ("Pricing", "Docs")
    assert rows["rn-anon"].anonymous_id == "anon-2"


@RUDDER_NODE
def test_rudder_sdk_node_backdated_identify_keeps_its_date(switchyard):
    """rudder-sdk-node sends the caller's timestamp and also originalTimestamp = now. An identify
    back-dated to 2020 is stored at 2020, so it cannot overwrite traits written since."""
    integration, key = make_integration("segment", name="rudder-backdated")
    back_then = datetime(2020, 1, 15, 9, 30, 0, tzinfo=UTC)
    calls = [
        ["identify", {"userId": "r-1", "traits": {"plan": "new", "email": "r1@example.com"}, "messageId": "now"}],
        [
            "identify",
            {
                "userId": "r-1",
                "traits": {"plan": "old", "email": "old-r1@example.com"},
                "timestamp": {"$date": back_then.isoformat()},
                "messageId": "backdated",
            },
        ],
    ]
    result = run_node({"library": "rudder-sdk-node", "host": switchyard.url, "writeKey": key, "calls": calls})
    assert result["errors"] == []
    row = stored(integration)["backdated"]
    # What the library sent: the caller's date, and the moment of the call beside it.
    assert parse_datetime(row.payload["originalTimestamp"]) > back_then + timedelta(days=365)
    assert abs(row.timestamp - back_then) < timedelta(seconds=5), row.timestamp

    drain_inbox()
    contact = Contact.objects.get(user_id="r-1")
    assert contact.properties["plan"] == "new"
    assert contact.email == "r1@example.com"


@pytest.mark.parametrize(
    "library",
    [
        pytest.param("analytics-node", marks=SEGMENT_NODE),
        pytest.param("rudder-sdk-node", marks=RUDDER_NODE),
    ],
)
def test_a_node_server_whose_clock_is_two_hours_fast(switchyard, library):
    """Events are stored at the true time (Segment's rule: timestamp = receivedAt - (sentAt -
    timestamp)), so its identify does not beat a later identify from a server with a true clock."""
    integration, key = make_integration("segment", name=f"{library} fast clock")
    calls = [
        ["identify", {"userId": "fast-1", "traits": {"plan": "skewed"}, "messageId": "fast-i"}],
        ["track", {"userId": "fast-1", "event": "Clicked", "messageId": "fast-t"}],
    ]
    before = datetime.now(UTC)
    result = run_node(
        {
            "library": library,
            "host": switchyard.url,
            "writeKey": key,
            "skewMs": int(TWO_HOURS.total_seconds() * 1000),
            "calls": calls,
        }
    )
    after = datetime.now(UTC)
    assert result["errors"] == []
    rows = stored(integration)
    assert set(rows) == {"fast-i", "fast-t"}
    for row in rows.values():
        assert parse_datetime(row.payload["sentAt"]) - after > TWO_HOURS - timedelta(minutes=1)  # it was fast
        assert before - timedelta(seconds=5) <= row.timestamp <= after + timedelta(seconds=5), row.timestamp
    drain_inbox()

    server_side = segment_python.Client(write_key=key, host=switchyard.url, sync_mode=True, max_retries=0)
    server_side.identify("fast-1", {"plan": "server"})
    drain_inbox()
    assert Contact.objects.get(user_id="fast-1").properties["plan"] == "server"
