"""delete (GDPR): erase, suppress, redact, record; later messages stay out until staff lift it."""

import hashlib

from contacts.models import (
    AudienceMembership,
    Contact,
    ContactEvent,
    ErasureRecord,
    ListMembership,
    Suppression,
)
from contacts.services import contact_erase
from integrations.models import InboxMessage
from tests.conftest import SegmentClient, make_integration
from tests.seeds import SEED_PAYLOADS

# Refersion's seed delete, as printed (context and integrations as empty arrays).
SEED_DELETE = SEED_PAYLOADS["refersion_delete"]
PETER = {
    "userId": "5678",
    "anonymousId": "anon-peter",
    "timestamp": "2019-02-01T00:00:00Z",
    "traits": {"email": "Peter@Example.com", "name": "Peter Pan", "plan": "pro", "mailingLists": {"news": True}},
    "context": {"personas": {"computation_key": "big_spenders"}},
}


def post(client, path, body):
    response = client.post(path, body)
    assert response.status_code == 200, response.content


def seed_peter(client, drain):
    post(client, "/v1/identify", dict(PETER, traits=dict(PETER["traits"], big_spenders=True)))
    post(client, "/v1/track", {"userId": "5678", "event": "Order Completed", "timestamp": "2019-02-02T00:00:00Z"})
    post(client, "/v1/page", {"anonymousId": "anon-peter", "name": "Pricing", "timestamp": "2019-02-03T00:00:00Z"})
    drain()
    contact = Contact.objects.get()
    assert contact.events.count() == 2
    assert ListMembership.objects.count() == 1
    assert AudienceMembership.objects.count() == 1
    return contact


def test_refersion_seed_delete_erases_suppresses_and_redacts(db, drain):
    integration, key = make_integration("refersion")
    client = SegmentClient(key)
    contact = seed_peter(client, drain)
    post(client, "/v1/destination", SEED_DELETE)
    drain()

    delete_row = InboxMessage.objects.get(type="delete")
    assert delete_row.status == "processed"
    assert not Contact.objects.exists()
    assert not ContactEvent.objects.exists()
    assert not ListMembership.objects.exists()
    assert not AudienceMembership.objects.exists()

    suppression = Suppression.objects.get()
    assert suppression.reason == "erased"
    assert suppression.user_id == "5678"
    assert suppression.email_md5 == hashlib.md5(b"peter@example.com").hexdigest()
    assert suppression.email == ""

    record = ErasureRecord.objects.get()
    assert record.contact_pk == contact.pk
    assert record.message_id == SEED_DELETE["messageId"]
    assert record.events_deleted == 2
    assert record.integration == integration
    # Every inbox row about Peter, the anonymous page view and the request itself included.
    assert record.inbox_redacted == InboxMessage.objects.count() == 4
    for row in InboxMessage.objects.all():
        assert row.payload == {"redacted": True}
        assert "peter" not in str(row.__dict__).lower()
        assert row.user_id == row.email == row.anonymous_id == ""


def test_later_identifies_are_skipped_until_staff_lift_the_suppression(segment, drain):
    client, _ = segment
    seed_peter(client, drain)
    post(client, "/v1/batch", {"batch": [SEED_DELETE]})
    drain()
    # By userId, and by email alone (any case).
    post(client, "/v1/identify", {"userId": "5678", "traits": {"plan": "back"}})
    post(client, "/v1/identify", {"anonymousId": "x", "traits": {"email": "PETER@example.com"}})
    post(client, "/v1/track", {"userId": "5678", "event": "Order Completed"})
    drain()
    later = InboxMessage.objects.filter(type__in=["identify", "track"], status__in=["skipped", "failed", "processed"])
    later = later.exclude(payload={"redacted": True})
    assert later.count() == 3
    for row in later:
        assert row.status == "skipped"
        assert "suppression list" in row.reason
    assert not Contact.objects.exists()

    Suppression.objects.all().delete()  # staff lift it in the admin
    post(client, "/v1/identify", {"userId": "5678", "traits": {"email": "peter@example.com", "plan": "again"}})
    drain()
    contact = Contact.objects.get()
    assert contact.properties == {"plan": "again"}


def test_delete_and_identify_in_one_chunk(segment, drain):
    client, _ = segment
    post(
        client,
        "/v1/batch",
        {
            "batch": [
                {"type": "identify", "userId": "5678", "traits": {"email": "peter@example.com"}},
                {"type": "track", "userId": "5678", "event": "Bought"},
                dict(SEED_DELETE, timestamp=None, originalTimestamp=None, sentAt=None, receivedAt=None),
                {"type": "identify", "userId": "5678", "traits": {"plan": "after"}},
            ]
        },
    )
    result = drain()
    assert (result.processed, result.skipped, result.failed) == (3, 1, 0)
    assert not Contact.objects.exists()
    assert not ContactEvent.objects.exists()
    # No row keeps a pointer to the erased contact.
    assert not InboxMessage.objects.filter(contact__isnull=False).exists()


def test_delete_erases_both_contacts_named_by_user_id_and_email(segment, drain):
    client, _ = segment
    post(client, "/v1/identify", {"userId": "5678", "traits": {"plan": "a"}})
    post(client, "/v1/identify", {"userId": "other", "traits": {"email": "peter@example.com"}})
    drain()
    assert Contact.objects.count() == 2
    post(client, "/v1/batch", {"batch": [SEED_DELETE]})
    drain()
    assert not Contact.objects.exists()
    assert set(Suppression.objects.exclude(user_id=None).values_list("user_id", flat=True)) == {"5678", "other"}


def test_redrained_delete_records_the_erasure_once(segment, drain):
    client, _ = segment
    seed_peter(client, drain)
    post(client, "/v1/batch", {"batch": [SEED_DELETE]})
    drain()
    InboxMessage.objects.update(next_attempt_at="2000-01-01T00:00:00Z")
    drain()
    assert ErasureRecord.objects.count() == 1
    assert Suppression.objects.count() == 1


def test_staff_erase_keeps_an_uploaded_suppression_marked_erased(db):
    contact = Contact.objects.create(user_id="u1", email="a@example.com")
    Suppression.objects.create(email_md5=hashlib.md5(b"a@example.com").hexdigest(), reason="uploaded")
    record = contact_erase(contact=contact, requested_by="admin ada")
    assert record.contact_pk == contact.pk
    assert not Contact.objects.exists()
    assert set(Suppression.objects.values_list("reason", flat=True)) == {"erased"}
    assert Suppression.objects.count() == 2


def test_rows_of_the_erase_chunk_keep_no_warning_or_reason_naming_the_person(segment, drain):
    client, _ = segment
    post(
        client,
        "/v1/batch",
        {
            "batch": [
                {"type": "identify", "userId": "5678", "traits": {"email": "peter@example.com"}},
                # Its warning quotes the bad value: personal data the erase must not leave behind.
                {"type": "identify", "userId": "5678", "traits": {"email": "peter-at-example.com"}},
                {"type": "group", "userId": "5678", "groupId": "g-peter"},
                dict(SEED_DELETE, timestamp=None, originalTimestamp=None, sentAt=None, receivedAt=None),
            ]
        },
    )
    drain()
    rows = list(InboxMessage.objects.exclude(type="delete"))
    assert len(rows) == 3
    for row in rows:
        assert row.payload == {"redacted": True}
        assert row.warnings == []
        assert "peter" not in row.reason and "5678" not in row.reason
