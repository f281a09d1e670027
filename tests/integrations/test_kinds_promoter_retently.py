"""Promoter (003) and Retently (002) rules, from the seeds."""

import pytest

from contacts.models import Contact, ContactEvent, PropertyDefinition
from integrations.models import InboxMessage
from tests.conftest import SegmentClient, make_integration


def post(client, path, body):
    response = client.post(path, body)
    assert response.status_code == 200, response.content


def row_for(**filters):
    return InboxMessage.objects.get(**filters)


@pytest.fixture
def promoter(db):
    integration, key = make_integration("promoter")
    return SegmentClient(key), integration


def test_promoter_identify_without_user_id_is_not_stored(promoter, drain):
    client, _ = promoter
    post(client, "/v1/identify", {"anonymousId": "a1", "traits": {"email": "a@example.com"}})
    drain()
    row = row_for(type="identify")
    assert row.status == "skipped"
    assert "only with a userId" in row.reason
    assert not Contact.objects.exists()


def test_promoter_every_trait_is_an_attribute(promoter, drain):
    client, _ = promoter
    post(
        client,
        "/v1/identify",
        {"userId": "p1", "traits": {"email": "p@example.com", "companyName": "ACME", "plan": "gold", "seats": 3}},
    )
    drain()
    contact = Contact.objects.get()
    assert contact.properties == {"companyName": "ACME", "plan": "gold", "seats": 3}


def test_promoter_track_only_for_identified_users(promoter, drain):
    client, _ = promoter
    post(client, "/v1/track", {"userId": "stranger", "event": "Order Completed"})
    post(client, "/v1/track", {"anonymousId": "anon", "event": "Order Completed"})
    drain()
    for row in InboxMessage.objects.all():
        assert row.status == "skipped"
        assert "identified" in row.reason
    assert "was not identified before" in row_for(user_id="stranger").reason
    assert not Contact.objects.exists()

    post(client, "/v1/identify", {"userId": "stranger", "traits": {"email": "s@example.com"}})
    drain()
    post(client, "/v1/track", {"userId": "stranger", "event": "Order Completed", "messageId": "again"})
    drain()
    assert row_for(message_id="again").status == "processed"
    assert ContactEvent.objects.get().contact.user_id == "stranger"


def test_promoter_identify_then_track_in_the_same_chunk(promoter, drain):
    client, _ = promoter
    post(
        client,
        "/v1/batch",
        {
            "batch": [
                {"type": "identify", "userId": "p1", "traits": {"email": "p1@example.com"}},
                {"type": "track", "userId": "p1", "event": "Order Completed"},
            ]
        },
    )
    result = drain()
    assert result.processed == 2


@pytest.fixture
def retently(db):
    integration, key = make_integration("retently", event_filter="Subscription Activate Button Clicked")
    PropertyDefinition.objects.create(name="tags", type="collection", source="staff")
    PropertyDefinition.objects.create(name="signup_date", type="date", source="staff")
    PropertyDefinition.objects.create(name="subscription_name", type="text", source="staff")
    PropertyDefinition.objects.create(name="country", type="text", source="staff")
    return SegmentClient(key), integration


SEED_TRACK = {
    "userId": "john",
    "event": "Subscription Activate Button Clicked",
    "properties": {
        "email": "john@example.com",
        "firstName": "John",
        "lastName": "Doe",
        "companyName": "ACME",
        "tags": "foo, bar, baz",
        "subscription_name": "Professional",
        "signup_date": "01/30/2020",
    },
}


def test_retently_seed_track_creates_the_customer(retently, drain):
    client, _ = retently
    post(client, "/v1/track", SEED_TRACK)
    drain()
    assert row_for(type="track").status == "processed"
    contact = Contact.objects.get()
    assert (contact.email, contact.first_name, contact.last_name) == ("john@example.com", "John", "Doe")
    # Only defined properties are assigned: companyName has no definition.
    assert contact.properties == {
        "tags": ["foo", "bar", "baz"],
        "subscription_name": "Professional",
        "signup_date": "2020-01-30",
    }
    assert not PropertyDefinition.objects.filter(name="company_name").exists()
    assert ContactEvent.objects.get().name == "Subscription Activate Button Clicked"


def test_retently_defined_properties_not_sent_are_unassigned(retently, drain):
    client, _ = retently
    post(client, "/v1/track", dict(SEED_TRACK, properties=dict(SEED_TRACK["properties"], country="USA")))
    drain()
    post(
        client,
        "/v1/track",
        {"userId": "john", "event": SEED_TRACK["event"], "properties": {"email": "john@example.com", "tags": ["vip"]}},
    )
    drain()
    assert Contact.objects.get().properties == {"tags": ["vip"]}


def test_retently_managed_properties_limit_what_is_unassigned(db, drain):
    integration, key = make_integration("retently", managed_properties="tags")
    PropertyDefinition.objects.create(name="tags", type="collection")
    PropertyDefinition.objects.create(name="country", type="text")
    client = SegmentClient(key)
    post(
        client,
        "/v1/track",
        {"userId": "j", "event": "E", "properties": {"email": "j@x.io", "tags": "a", "country": "US"}},
    )
    drain()
    post(client, "/v1/track", {"userId": "j", "event": "E", "properties": {"email": "j@x.io"}})
    drain()
    assert Contact.objects.get().properties == {"country": "US"}


@pytest.mark.parametrize("email", [None, "", "not-an-email", 42])
def test_retently_requires_email(retently, drain, email):
    client, _ = retently
    properties = {"tags": "a"} if email is None else {"email": email, "tags": "a"}
    post(client, "/v1/track", {"userId": "j", "event": SEED_TRACK["event"], "properties": properties})
    drain()
    row = row_for(type="track")
    assert row.status == "refused"  # a partner rule: shown apart from errors, not retried
    assert row.next_attempt_at is None
    assert "properties.email is required" in row.reason
    assert not Contact.objects.exists()


def test_retently_dismisses_unmatched_events_and_identify(retently, drain):
    client, _ = retently
    post(client, "/v1/track", {"userId": "j", "event": "Other", "properties": {"email": "j@example.com"}})
    post(client, "/v1/identify", {"userId": "j", "traits": {"email": "j@example.com"}})
    drain()
    assert "matches no campaign" in row_for(type="track").reason
    assert row_for(type="identify").status == "skipped"
    assert not Contact.objects.exists()


def test_retently_wrong_type_is_a_warning(retently, drain):
    client, _ = retently
    properties = dict(SEED_TRACK["properties"], signup_date="the thirtieth")
    post(client, "/v1/track", dict(SEED_TRACK, properties=properties))
    drain()
    row = row_for(type="track")
    assert row.status == "processed"
    assert row.warnings == [
        "properties.signup_date: 'the thirtieth' is not a date (use MM/DD/YYYY, ISO 8601 or RFC 2822); "
        "not stored (property signup_date is date)"
    ]
    assert "signup_date" not in Contact.objects.get().properties
