"""Partner rules, one kind at a time, on the partners' own recorded payloads."""

from __future__ import annotations

from contacts.models import Contact, ContactEvent, ListMembership, PropertyDefinition
from tests.kinds.conftest import apply, fixture


def statuses(rows) -> dict[str, str]:
    return {row.message_id: row.status for row in rows}


# --- Loops ---------------------------------------------------------------------------------------
def test_loops_test_event_creates_the_contact_with_properties_as_named_and_its_list(kind):
    rows = apply(kind("loops"), fixture("loops/identify_test_event"))
    assert statuses(rows) == {"segment-test-message-gt3ds8": "processed"}
    contact = Contact.objects.get()
    assert (contact.user_id, contact.email, contact.first_name) == ("test-user-a5h7xb", "adam@example.com", "Adam")
    assert contact.properties == {"favoriteColor": "blue", "favoriteNumber": 42}
    assert list(ListMembership.objects.values_list("mailing_list__list_id", "subscribed")) == [("1234567890", True)]


def test_loops_refuses_the_docs_obfuscated_address(kind):
    (row,) = apply(kind("loops"), fixture("loops/identify_obfuscated_email"))
    assert row.status == "refused"
    assert "missing email" in row.reason
    assert not Contact.objects.exists()


def test_loops_mailing_lists_as_a_map_and_track_with_context_traits(kind):
    loops = kind("loops")
    rows = apply(loops, fixture("loops/identify_mailing_lists_map"), fixture("loops/track_user_registered"))
    assert set(statuses(rows).values()) == {"processed"}
    contact = Contact.objects.get()
    assert contact.first_name == "Phil"  # from the track's context.traits
    assert contact.properties == {"plan": "premium", "logins": 5}
    lists = dict(ListMembership.objects.values_list("mailing_list__list_id", "subscribed"))
    assert lists == {"cm06f5v0e45nf0ml5754o9cix": True, "cm16k73gq014h0mmj5b6jdi9r": False}
    event = ContactEvent.objects.get()
    assert (event.name, event.properties) == ("User Registered", {"plan": "Pro Annual", "accountType": "Facebook"})


def test_loops_track_for_an_unknown_contact_without_email_is_refused_and_page_is_skipped(kind):
    loops = kind("loops")
    rows = apply(loops, fixture("loops/track_unknown_without_email"), fixture("loops/page"))
    by_type = {row.type: row for row in rows}
    assert by_type["track"].status == "refused" and "needs an email" in by_type["track"].reason
    assert by_type["page"].status == "skipped" and "does not use page calls" in by_type["page"].reason


def test_loops_event_filter_skips_other_events(kind):
    (row,) = apply(kind("loops", event_filter="Signed Up"), fixture("loops/track_user_registered"))
    assert row.status == "skipped" and "'User Registered'" in row.reason


# --- Retently -----------------------------------------------------------------------------------
def test_retently_takes_the_customer_from_track_properties_with_its_own_names(kind):
    for name, type_ in (("country", "text"), ("created_date", "date"), ("order_total", "number")):
        PropertyDefinition.objects.create(name=name, type=type_)
    retently = kind("retently", event_filter="Place order")
    rows = apply(
        retently,
        fixture("retently/track_place_order"),
        fixture("retently/track_no_email"),
        fixture("retently/track_other_event"),
        fixture("retently/identify"),
    )
    assert statuses(rows) == {
        "retently-identify-1": "skipped",
        "retently-order-1": "processed",
        "retently-order-2": "refused",
        "retently-visit-1": "skipped",
    }
    by_id = {row.message_id: row for row in rows}
    assert "properties.email is required" in by_id["retently-order-2"].reason
    assert "matches no campaign; dismissed" in by_id["retently-visit-1"].reason
    contact = Contact.objects.get()
    assert (contact.email, contact.first_name) == ("buyer@example.com", "Bea")
    # Only defined properties are assigned, under Retently's lowercase names.
    assert contact.properties == {"country": "USA", "created_date": "2020-01-30", "order_total": 59.5}


# --- Promoter -----------------------------------------------------------------------------------
def test_promoter_stores_identified_people_only_and_tracks_only_for_them(kind):
    promoter = kind("promoter")
    assert promoter.daily_cap == 50_000
    rows = apply(
        promoter,
        fixture("promoter/identify"),
        fixture("promoter/identify_anonymous"),
        fixture("promoter/track_identified"),
        fixture("promoter/track_unidentified"),
    )
    assert statuses(rows) == {
        "promoter-identify-1": "processed",
        "promoter-identify-anon": "skipped",
        "promoter-track-1": "processed",
        "promoter-track-2": "skipped",
    }
    by_id = {row.message_id: row for row in rows}
    assert "only with a userId" in by_id["promoter-identify-anon"].reason
    assert "was not identified before" in by_id["promoter-track-2"].reason
    contact = Contact.objects.get()
    assert (contact.first_name, contact.last_name) == ("Nora", "Park")
    assert contact.properties == {"companyName": "ACME", "plan": "gold", "seats": 3}


# --- Refersion ----------------------------------------------------------------------------------
def test_refersion_identify_keeps_the_person_and_the_seed_delete_erases_them(kind):
    refersion = kind("refersion")
    (identify,) = apply(refersion, fixture("refersion/identify_affiliate"))
    assert identify.status == "processed"
    contact = Contact.objects.get()
    assert contact.address["postalCode"] == "78701"
    assert contact.audiences.get().key == "order_completed_last_30days"
    # The seed's delete, with "context": [] and "integrations": [].
    (delete,) = apply(refersion, fixture("refersion/delete"))
    assert delete.status == "processed"
    assert not Contact.objects.exists()


# --- Segment (every behaviour) --------------------------------------------------------------------
def test_segment_applies_every_type_in_one_chunk(kind):
    segment = kind("segment")
    rows = apply(
        segment,
        fixture("segment/page_anonymous"),
        fixture("segment/identify"),
        fixture("segment/track"),
        fixture("segment/group"),
        fixture("segment/alias"),
    )
    by_type = {row.type: row for row in rows}
    assert by_type["identify"].status == "processed"
    assert by_type["track"].status == "processed"
    assert by_type["group"].status == "skipped" and "group calls" in by_type["group"].reason
    assert by_type["alias"].status == "processed"
    # The anonymous page waited, and the alias (previousId anon-2) woke it in the same chunk.
    assert by_type["page"].status == "pending"
    contact = Contact.objects.get()
    assert contact.identities.filter(anonymous_id="anon-2").exists()
    (delete,) = apply(segment, fixture("segment/delete"))
    assert delete.status == "processed"
    assert not Contact.objects.exists()
