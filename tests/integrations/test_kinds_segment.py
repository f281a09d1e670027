"""The generic segment kind: every partner rule that does not conflict, looser identity."""

import pytest

from contacts.models import Contact, ContactEvent, ListMembership, Suppression
from contacts.services import contact_unsubscribe, suppressions_add
from integrations.models import InboxMessage
from tests.conftest import SegmentClient, make_integration


def post(client, path, body):
    response = client.post(path, body)
    assert response.status_code == 200, response.content


def test_either_id_creates_a_contact(segment, drain):
    client, _ = segment
    post(client, "/v1/identify", {"userId": "only-user", "traits": {"plan": "a"}})
    post(client, "/v1/identify", {"anonymousId": "a1", "traits": {"email": "only@example.com"}})
    # A track creates the contact too: Segment sends events before identifies all the time.
    post(client, "/v1/track", {"userId": "tracked", "event": "Signed Up", "properties": {"via": "ads"}})
    drain()
    assert set(InboxMessage.objects.values_list("status", flat=True)) == {"processed"}
    assert Contact.objects.count() == 3
    assert ContactEvent.objects.get().contact.user_id == "tracked"


def test_loops_and_promoter_rules_apply_to_the_generic_kind(db, drain):
    integration, key = make_integration("segment", fixed_mailing_list="all", event_filter="Signed Up")
    client = SegmentClient(key)
    post(
        client,
        "/v1/identify",
        {
            "userId": "u1",
            "traits": {
                "email": "u1@example.com",
                "subscribed": False,
                "companyName": "ACME",
                "mailingLists": [{"listId": "l1"}],
            },
        },
    )
    post(client, "/v1/track", {"userId": "u1", "event": "Other"})
    drain()
    contact = Contact.objects.get()
    assert contact.subscribed is False
    assert contact.properties == {"companyName": "ACME"}
    assert dict(ListMembership.objects.values_list("mailing_list__list_id", "subscribed")) == {"l1": True, "all": True}
    assert InboxMessage.objects.get(type="track").status == "skipped"


def test_a_new_contact_with_an_unsubscribed_email_starts_unsubscribed(segment, drain):
    client, _ = segment
    post(client, "/v1/identify", {"userId": "u1", "traits": {"email": "gone@example.com"}})
    drain()
    contact_unsubscribe(contacts=Contact.objects.all(), reason="asked by email")
    Contact.objects.all().delete()  # e.g. removed by staff; the suppression remains
    post(client, "/v1/identify", {"userId": "u2", "traits": {"email": "GONE@example.com"}})
    drain()
    contact = Contact.objects.get()
    assert contact.user_id == "u2"
    assert contact.subscribed is False


def test_an_uploaded_suppression_does_not_block_contacts(segment, drain):
    # Uploaded suppressions (Retention.com's "known contacts") stop sending out, not storing.
    from contacts.services import suppressions_add

    suppressions_add(emails=["known@example.com"])
    client, _ = segment
    post(client, "/v1/identify", {"userId": "k", "traits": {"email": "known@example.com"}})
    drain()
    assert Contact.objects.get().subscribed is True


def test_a_top_level_email_fills_in_an_existing_contact(segment, drain):
    client, _ = segment
    post(client, "/v1/identify", {"userId": "u1", "traits": {"plan": "pro"}})
    drain()
    assert Contact.objects.get().email is None
    # Loops' test event puts the email beside the traits, not in them.
    post(client, "/v1/identify", {"userId": "u1", "email": "U1@Example.com", "traits": {"plan": "team"}})
    drain()
    contact = Contact.objects.get()
    assert (contact.email, contact.properties["plan"]) == ("u1@example.com", "team")
    # A contact that has an email keeps it: the top-level one does not replace it.
    post(client, "/v1/identify", {"userId": "u1", "email": "other@example.com"})
    drain()
    assert Contact.objects.get().email == "u1@example.com"


def test_opting_in_again_lifts_an_unsubscribe(segment, drain):
    client, _ = segment
    post(client, "/v1/identify", {"userId": "u1", "traits": {"email": "back@example.com"}})
    drain()
    contact_unsubscribe(contacts=Contact.objects.all(), reason="one-click unsubscribe")
    assert Suppression.objects.filter(reason="unsubscribed").count() == 1
    post(client, "/v1/identify", {"userId": "u1", "traits": {"subscribed": True}})
    drain()
    assert Contact.objects.get().subscribed is True
    assert not Suppression.objects.exists()
    assert InboxMessage.objects.filter(type="identify").last().warnings == []


@pytest.mark.parametrize("reason", ["bounced", "complained"])
def test_a_bounced_or_complaining_address_cannot_opt_itself_back_in(segment, drain, reason):
    client, _ = segment
    post(client, "/v1/identify", {"userId": "u1", "traits": {"email": "hard@example.com", "subscribed": False}})
    drain()
    suppressions_add(emails=["hard@example.com"], reason=reason)
    post(client, "/v1/identify", {"userId": "u1", "traits": {"subscribed": True}})
    drain()
    assert Contact.objects.get().subscribed is False
    assert Suppression.objects.get().reason == reason
    row = InboxMessage.objects.filter(type="identify").last()
    assert row.status == "processed"
    assert row.warnings == [f"subscribed: true not applied; this address is suppressed ({reason})"]
