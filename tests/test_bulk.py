"""The bulk write helpers the drain relies on: every value round-trips, keys come back in order."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from common.bulk import bulk_insert, bulk_update
from contacts.models import Contact, ContactEvent, ContactIdentity
from tests.conftest import make_integration

pytestmark = pytest.mark.django_db

WHEN = datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)


def test_bulk_insert_sets_primary_keys_in_order_and_round_trips_every_value():
    integration, _ = make_integration("segment")
    contacts = [
        Contact(
            user_id=f"u{n}",
            email=f"u{n}@example.com" if n % 2 else None,
            first_name="Zoë" if n == 0 else "",
            address={"city": "Paris"} if n == 1 else {},
            subscribed=n != 2,
            properties={"plan": "pro", "seats": n, "tags": ["a", "b"], "nested": {"x": None}},
            stamps={"plan": "2025-01-01T00:00:00.000000+00:00"},
            source=integration if n else None,
            last_seen_at=WHEN if n else None,
        )
        for n in range(3)
    ]
    bulk_insert(Contact, contacts)
    assert [c.pk for c in contacts] == sorted(c.pk for c in contacts)
    for contact in contacts:
        stored = Contact.objects.get(pk=contact.pk)
        assert stored.user_id == contact.user_id
        assert (stored.email, stored.first_name, stored.address) == (contact.email, contact.first_name, contact.address)
        assert (stored.subscribed, stored.properties, stored.stamps) == (
            contact.subscribed,
            contact.properties,
            contact.stamps,
        )
        assert (stored.source_id, stored.last_seen_at) == (contact.source_id, contact.last_seen_at)
    # The objects are now saved rows: a later save updates instead of inserting again.
    contacts[0].first_name = "Ada"
    contacts[0].save()
    assert Contact.objects.filter(first_name="Ada").count() == 1


def test_bulk_insert_ignoring_conflicts_skips_duplicates():
    contact = Contact.objects.create(user_id="u1")
    ContactIdentity.objects.create(contact=contact, anonymous_id="a1")
    rows = [ContactIdentity(contact=contact, anonymous_id=a) for a in ("a1", "a2", "a3")]
    bulk_insert(ContactIdentity, rows, ignore_conflicts=True)
    assert sorted(ContactIdentity.objects.values_list("anonymous_id", flat=True)) == ["a1", "a2", "a3"]
    events = [
        ContactEvent(contact=contact, inbox_message_id=7, name="Signed Up", properties={"a": 1}, timestamp=WHEN),
        ContactEvent(contact=contact, inbox_message_id=7, name="Signed Up", properties={"a": 1}, timestamp=WHEN),
    ]
    bulk_insert(ContactEvent, events, ignore_conflicts=True)
    event = ContactEvent.objects.get()
    assert (event.name, event.properties, event.timestamp, event.type) == ("Signed Up", {"a": 1}, WHEN, "track")


def test_bulk_insert_of_nothing_does_nothing():
    bulk_insert(Contact, [])
    assert not Contact.objects.exists()


def test_bulk_update_writes_only_the_named_fields():
    first, second = Contact.objects.create(user_id="u1", first_name="A"), Contact.objects.create(user_id="u2")
    first.first_name, first.last_name = "Ada", "not written"
    second.first_name, second.properties = "Bo", {"plan": "pro", "n": None}
    assert bulk_update(Contact, [first, second], ["first_name", "properties"]) == 2
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.first_name, first.last_name, first.properties) == ("Ada", "", {})
    assert (second.first_name, second.properties) == ("Bo", {"plan": "pro", "n": None})


def test_bulk_insert_fills_auto_now_add_as_a_save_would():
    from contacts.models import PropertyDefinition

    rows = [PropertyDefinition(name=f"p{n}", type="text") for n in range(2)]
    assert all(row.created_at is None for row in rows)
    bulk_insert(PropertyDefinition, rows)
    stored = list(PropertyDefinition.objects.order_by("name"))
    assert [d.name for d in stored] == ["p0", "p1"]
    assert all(d.created_at is not None for d in stored)
    assert [d.created_at for d in stored] == [r.created_at for r in rows]
