"""Engage audiences and the events timeline (with idempotent re-drains)."""

from contacts.models import AudienceMembership, Contact, ContactEvent, ContactIdentity
from integrations.models import InboxMessage


def post(client, path, body):
    response = client.post(path, body)
    assert response.status_code == 200, response.content


def engage_identify(member, ts, key="order_completed_last_30days"):
    return {
        "type": "identify",
        "userId": "u1",
        "timestamp": ts,
        "traits": {"email": "u1@example.com", key: member, "lifetime_orders": 4},
        "context": {"personas": {"computation_class": "audience", "computation_key": key, "space_id": "spa_1"}},
    }


def test_engage_identify_records_entered_and_exited(segment, drain):
    client, _ = segment
    post(client, "/v1/batch", {"batch": [engage_identify(True, "2024-01-01T00:00:00Z")]})
    drain()
    audience = AudienceMembership.objects.get()
    assert audience.key == "order_completed_last_30days"
    assert audience.member is True
    assert audience.entered_at.isoformat() == "2024-01-01T00:00:00+00:00"
    assert audience.exited_at is None
    contact = Contact.objects.get()
    # The audience flag is a membership, not a property; other traits stay properties.
    assert contact.properties == {"lifetime_orders": 4}

    post(client, "/v1/batch", {"batch": [engage_identify(False, "2024-02-01T00:00:00Z")]})
    drain()
    audience.refresh_from_db()
    assert audience.member is False
    assert audience.entered_at.isoformat() == "2024-01-01T00:00:00+00:00"
    assert audience.exited_at.isoformat() == "2024-02-01T00:00:00+00:00"

    # An older sync arriving late does not put them back in.
    post(client, "/v1/batch", {"batch": [engage_identify(True, "2024-01-15T00:00:00Z")]})
    drain()
    audience.refresh_from_db()
    assert audience.member is False


def test_boolean_traits_without_personas_are_properties(segment, drain):
    client, _ = segment
    post(client, "/v1/identify", {"userId": "u1", "traits": {"email": "u1@example.com", "vip": True}})
    drain()
    assert Contact.objects.get().properties == {"vip": True}
    assert not AudienceMembership.objects.exists()


def test_personas_without_computation_key_take_every_boolean(segment, drain):
    client, _ = segment
    post(
        client,
        "/v1/identify",
        {
            "userId": "u1",
            "traits": {"email": "u@x.io", "big_spender": True, "churn_risk": False},
            "context": {"personas": {}},
        },
    )
    drain()
    assert dict(AudienceMembership.objects.values_list("key", "member")) == {"big_spender": True, "churn_risk": False}


def test_audience_entered_and_exited_tracks(segment, drain):
    client, _ = segment
    post(client, "/v1/identify", {"userId": "u1", "traits": {"email": "u1@example.com"}})
    drain()
    post(
        client,
        "/v1/batch",
        {
            "batch": [
                {
                    "type": "track",
                    "userId": "u1",
                    "event": "Audience Entered",
                    "timestamp": "2024-03-01T00:00:00Z",
                    "properties": {"audience_key": "trial_users", "trial_users": True},
                },
                {
                    "type": "track",
                    "userId": "u1",
                    "event": "Audience Exited",
                    "timestamp": "2024-03-05T00:00:00Z",
                    "properties": {"audience_key": "trial_users", "trial_users": False},
                },
            ]
        },
    )
    drain()
    audience = AudienceMembership.objects.get()
    assert audience.member is False
    # Both transitions of one chunk are kept.
    assert audience.entered_at.isoformat() == "2024-03-01T00:00:00+00:00"
    assert audience.exited_at.isoformat() == "2024-03-05T00:00:00+00:00"
    assert ContactEvent.objects.count() == 2


def test_track_page_screen_are_on_the_timeline(segment, drain):
    client, integration = segment
    post(client, "/v1/identify", {"userId": "u1", "anonymousId": "a1", "traits": {"email": "u1@example.com"}})
    post(
        client,
        "/v1/track",
        {"userId": "u1", "event": "Order Completed", "timestamp": "2024-01-02T03:04:05Z", "properties": {"total": 9.5}},
    )
    post(client, "/v1/page", {"anonymousId": "a1", "name": "Pricing", "properties": {"path": "/pricing"}})
    post(client, "/v1/screen", {"userId": "u1", "name": "Home"})
    drain()
    contact = Contact.objects.get()
    events = {e.type: e for e in contact.events.all()}
    assert set(events) == {"track", "page", "screen"}
    track = events["track"]
    assert (track.name, track.properties, track.integration) == ("Order Completed", {"total": 9.5}, integration)
    assert track.timestamp.isoformat() == "2024-01-02T03:04:05+00:00"
    assert events["page"].properties == {"path": "/pricing", "name": "Pricing"}
    assert events["screen"].name == "Home"


def test_redraining_the_same_rows_never_duplicates(segment, drain):
    client, _ = segment
    post(
        client,
        "/v1/batch",
        {
            "batch": [
                {"type": "identify", "userId": "u1", "anonymousId": "a1", "traits": {"email": "u1@example.com"}},
                {
                    "type": "identify",
                    "userId": "u2",
                    "traits": {"email": "u2@example.com", "mailingLists": {"n": True}},
                },
                {"type": "track", "userId": "u1", "event": "A"},
                {"type": "track", "anonymousId": "new-anon", "event": "B", "context": {"traits": {"email": "u3@x.io"}}},
                {"type": "page", "userId": "u2", "name": "P"},
            ]
        },
    )
    drain()
    before = (Contact.objects.count(), ContactEvent.objects.count(), ContactIdentity.objects.count())
    assert before == (3, 3, 2)
    # Reset the rows as if a worker died after applying them, and drain twice more.
    for _ in range(2):
        InboxMessage.objects.update(next_attempt_at="2000-01-01T00:00:00Z", status="pending")
        result = drain()
        assert result.processed == 5
    assert (Contact.objects.count(), ContactEvent.objects.count(), ContactIdentity.objects.count()) == before
