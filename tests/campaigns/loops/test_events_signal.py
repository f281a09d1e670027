"""The internal event API under loops: contacts.signals.events_recorded, sent once per drained
chunk with all its tracks, and by contact_event_record for the apps' own events."""

from __future__ import annotations

import pytest

from contacts.models import ContactEvent
from contacts.services import contact_event_record
from contacts.signals import events_recorded

pytestmark = pytest.mark.django_db


@pytest.fixture
def heard():
    calls: list[list] = []

    def receiver(sender, events, **kwargs):
        calls.append(list(events))

    events_recorded.connect(receiver, dispatch_uid="test-heard")
    yield calls
    events_recorded.disconnect(dispatch_uid="test-heard")


def test_a_drained_chunk_announces_its_tracks_once(segment, drain, heard):
    client, integration = segment
    batch = [
        {"type": "identify", "userId": "u1", "traits": {"email": "u1@example.com"}, "messageId": "i1"},
        {"type": "track", "userId": "u1", "event": "User Registered", "properties": {"plan": "pro"}, "messageId": "t1"},
        {"type": "page", "userId": "u1", "name": "Home", "messageId": "p1"},
        {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "t2"},
    ]
    assert client.post("/v1/batch", {"batch": batch}).status_code == 200
    drain()
    [records] = heard
    stored = {e.name: e for e in ContactEvent.objects.filter(type="track")}
    assert [(r.name, r.event_id, r.source, r.integration_id) for r in records] == [
        ("User Registered", stored["User Registered"].pk, "segment", integration.pk),
        ("Order Completed", stored["Order Completed"].pk, "segment", integration.pk),
    ]
    assert records[0].properties == {"plan": "pro"}
    assert records[0].contact_id == stored["User Registered"].contact_id


def test_a_rerun_chunk_announces_the_same_event_ids_and_stores_nothing_twice(segment, drain, heard):
    """A chunk applied again (its rows due again after their events were stored, as after a
    crash between the events' insert and the rows' status) finds its events already there."""
    from django.utils import timezone

    from integrations.models import InboxMessage

    client, _ = segment
    batch = [
        {"type": "track", "userId": "u1", "event": "User Registered", "messageId": "t1"},
        {"type": "track", "userId": "u2", "event": "User Registered", "messageId": "t2"},
    ]
    assert client.post("/v1/batch", {"batch": batch}).status_code == 200
    drain()
    first = sorted((r.event_id, r.contact_id) for call in heard for r in call)  # a call per chunk (lane)
    heard.clear()
    InboxMessage.objects.update(status="pending", next_attempt_at=timezone.now(), processed_at=None)
    drain()
    assert sorted((r.event_id, r.contact_id) for call in heard for r in call) == first
    assert len(first) == 2
    assert ContactEvent.objects.count() == 2


def test_an_app_event_is_recorded_and_announced(identify, heard):
    ada = identify("u1")
    heard.clear()
    event = contact_event_record(contact=ada, name="Affiliate Conversion Approved", properties={"amount": 40})
    assert event.type == "internal" and event.pk
    [[record]] = heard
    assert (record.event_id, record.contact_id, record.source, record.integration_id) == (
        event.pk,
        ada.pk,
        "internal",
        None,
    )


def test_bad_app_events_are_refused(identify):
    ada = identify("u1")
    with pytest.raises(ValueError, match="source"):
        contact_event_record(contact=ada, name="X", source="partner")
    with pytest.raises(ValueError, match="name"):
        contact_event_record(contact=ada, name="")
