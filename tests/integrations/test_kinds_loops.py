"""Loops, from the seed (001): contacts, subscribed, mailing lists, events."""

import copy

import pytest

from contacts.models import Contact, ContactEvent, ListMembership
from integrations.models import InboxMessage
from tests.conftest import SegmentClient, make_integration
from tests.seeds import SEED_PAYLOADS

# The seed's test event, exactly as printed (email at the top level).
SEED_IDENTIFY = copy.deepcopy(SEED_PAYLOADS["loops_identify"])
# The seed prints a Cloudflare-obfuscated address; the email the test means is a real one.
SEED_IDENTIFY["email"] = "adam@example.com"


@pytest.fixture
def loops(db):
    integration, key = make_integration("loops")
    return SegmentClient(key), integration


def post(client, path, body):
    response = client.post(path, body)
    assert response.status_code == 200, response.content


def last_row():
    return InboxMessage.objects.order_by("-id").first()


def lists_of(contact):
    return dict(ListMembership.objects.filter(contact=contact).values_list("mailing_list__list_id", "subscribed"))


def test_seed_test_event_creates_the_contact(loops, drain):
    client, _ = loops
    post(client, "/v1/destination", SEED_IDENTIFY)
    drain()
    assert last_row().status == "processed"
    contact = Contact.objects.get()
    assert (contact.user_id, contact.email, contact.first_name) == ("test-user-a5h7xb", "adam@example.com", "Adam")
    assert contact.properties == {"favoriteColor": "blue", "favoriteNumber": 42}
    assert contact.subscribed is True
    assert lists_of(contact) == {"1234567890": True}


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({"userId": "u1", "traits": {"firstName": "No Email"}}, "email"),
        ({"anonymousId": "a1", "traits": {"email": "x@example.com"}}, "userId"),
    ],
)
def test_create_needs_email_and_user_id(loops, drain, body, missing):
    client, _ = loops
    post(client, "/v1/identify", body)
    drain()
    row = last_row()
    assert row.status == "refused"  # a partner rule: shown apart from errors, not retried
    assert row.next_attempt_at is None  # permanent: retrying cannot help
    assert f"missing {missing}" in row.reason
    assert not Contact.objects.exists()


def test_update_by_user_id_or_email_never_duplicates(loops, drain):
    client, _ = loops
    post(client, "/v1/destination", SEED_IDENTIFY)
    drain()
    post(client, "/v1/identify", {"userId": "test-user-a5h7xb", "traits": {"favoriteColor": "green"}})
    drain()
    # By email alone (any case): an existing contact needs no userId.
    post(client, "/v1/identify", {"anonymousId": "a1", "traits": {"email": "ADAM@example.com", "plan": "premium"}})
    drain()
    contact = Contact.objects.get()
    assert contact.properties == {"favoriteColor": "green", "favoriteNumber": 42, "plan": "premium"}


def test_subscribed_is_three_state(loops, drain):
    client, _ = loops

    def identify(traits, user="u1"):
        post(client, "/v1/identify", {"userId": user, "traits": {"email": f"{user}@example.com", **traits}})
        drain()
        return Contact.objects.get(user_id=user)

    assert identify({}).subscribed is True  # absent, new: subscribed
    contact = identify({"subscribed": False})
    assert contact.subscribed is False
    assert contact.subscription_changed_at is not None
    assert "identify" in contact.subscription_reason
    assert identify({}).subscribed is False  # absent, existing: unchanged
    assert identify({"subscribed": True}).subscribed is True  # re-subscribe
    assert identify({"subscribed": False}, user="u2").subscribed is False  # new, unsubscribed
    post(client, "/v1/identify", {"userId": "u1", "traits": {"subscribed": "nope"}})
    drain()
    assert any("subscribed must be true or false" in w for w in last_row().warnings)


def test_mailing_lists_as_array_and_as_map(loops, drain):
    client, _ = loops
    post(
        client,
        "/v1/identify",
        {
            "userId": "97980cfea0067",
            "traits": {
                "email": "jane@example.com",
                "plan": "premium",
                "logins": 5,
                "mailingLists": [
                    {"listId": "cm06f5v0e45nf0ml5754o9cix", "subscribed": True},
                    {"listId": "cm16k73gq014h0mmj5b6jdi9r", "subscribed": True},
                ],
            },
        },
    )
    drain()
    contact = Contact.objects.get()
    assert lists_of(contact) == {"cm06f5v0e45nf0ml5754o9cix": True, "cm16k73gq014h0mmj5b6jdi9r": True}
    post(
        client,
        "/v1/identify",
        {"userId": "97980cfea0067", "traits": {"mailingLists": {"cm06f5v0e45nf0ml5754o9cix": False, "other": True}}},
    )
    drain()
    assert lists_of(contact) == {"cm06f5v0e45nf0ml5754o9cix": False, "cm16k73gq014h0mmj5b6jdi9r": True, "other": True}
    assert contact.properties == {"plan": "premium", "logins": 5}
    post(client, "/v1/identify", {"userId": "97980cfea0067", "traits": {"mailingLists": "weekly"}})
    drain()
    assert any("mailingLists must be" in w for w in last_row().warnings)


def test_older_list_change_does_not_win(loops, drain):
    client, _ = loops
    base = {"userId": "u1", "traits": {"email": "u1@example.com"}}
    post(
        client,
        "/v1/identify",
        dict(base, timestamp="2024-02-01T00:00:00Z", traits={"email": "u1@example.com", "mailingLists": {"l": False}}),
    )
    drain()
    post(client, "/v1/identify", dict(base, timestamp="2024-01-01T00:00:00Z", traits={"mailingLists": {"l": True}}))
    drain()
    assert lists_of(Contact.objects.get()) == {"l": False}


def test_fixed_mailing_list(db, drain):
    integration, key = make_integration("loops", fixed_mailing_list="newsletter")
    post(SegmentClient(key), "/v1/identify", {"userId": "u1", "traits": {"email": "u1@example.com"}})
    drain()
    assert lists_of(Contact.objects.get()) == {"newsletter": True}


def test_track_with_context_traits_updates_the_contact(loops, drain):
    client, integration = loops
    post(client, "/v1/destination", SEED_IDENTIFY)
    drain()
    post(
        client,
        "/v1/track",
        {
            "userId": "test-user-a5h7xb",
            "event": "User Registered",
            "properties": {"plan": "Pro Annual", "accountType": "Facebook"},
            "context": {"traits": {"firstName": "Phil"}},
        },
    )
    drain()
    assert last_row().status == "processed"
    contact = Contact.objects.get()
    assert contact.first_name == "Phil"
    event = ContactEvent.objects.get()
    # Event properties are kept as sent.
    assert (event.name, event.properties) == ("User Registered", {"plan": "Pro Annual", "accountType": "Facebook"})
    assert event.integration == integration


def test_track_for_a_new_contact_needs_an_email(loops, drain):
    client, _ = loops
    post(client, "/v1/track", {"userId": "stranger", "event": "User Registered"})
    drain()
    row = last_row()
    assert row.status == "refused"  # a partner rule: shown apart from errors, not retried
    assert "needs an email" in row.reason
    assert not Contact.objects.exists()
    post(
        client,
        "/v1/track",
        {"userId": "stranger", "event": "User Registered", "context": {"traits": {"email": "s@example.com"}}},
    )
    drain()
    assert last_row().status == "processed"
    contact = Contact.objects.get()
    assert (contact.user_id, contact.email) == ("stranger", "s@example.com")
    assert contact.events.count() == 1


def test_event_filter(db, drain):
    integration, key = make_integration("loops", event_filter="User Registered, Plan Upgraded")
    client = SegmentClient(key)
    post(client, "/v1/identify", {"userId": "u1", "traits": {"email": "u1@example.com"}})
    post(client, "/v1/track", {"userId": "u1", "event": "Plan Upgraded"})
    post(client, "/v1/track", {"userId": "u1", "event": "Page Scrolled"})
    drain()
    skipped = InboxMessage.objects.get(event="Page Scrolled")
    assert skipped.status == "skipped"
    assert "event filter" in skipped.reason
    assert list(ContactEvent.objects.values_list("name", flat=True)) == ["Plan Upgraded"]
