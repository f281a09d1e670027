"""Contact rules a user relies on: the contract's contact fields and timeline in the API, staff
edits that outlive older messages, valid emails only, and partners that keep to their own data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from contacts.models import Contact, MailingList, PropertyDefinition
from integrations.models import InboxMessage
from tests.conftest import SegmentClient, make_integration


@pytest.fixture
def api(db):
    user = get_user_model().objects.create_user("script", password="x", is_staff=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def post(client, path, body):
    response = client.post(path, body)
    assert response.status_code == 200, response.content


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- the API shows what the contract names ------------------------------------------------------
def test_contact_fields_are_read_and_written_through_the_api(api, segment, drain):
    client, _ = segment
    post(
        client,
        "/v1/identify",
        {
            "userId": "u1",
            "traits": {
                "email": "ann@example.com",
                "firstName": "Ann",
                "lastName": "Lee",
                "phone": "+1 555 0100",
                "address": {"street": "1 Main St", "city": "Springfield", "postalCode": "12345"},
            },
        },
    )
    drain()
    (ann,) = api.get("/api/v1/contacts/", {"user_id": "u1"}).json()["results"]
    assert (ann["first_name"], ann["last_name"], ann["phone"]) == ("Ann", "Lee", "+1 555 0100")
    assert ann["address"] == {"street": "1 Main St", "city": "Springfield", "postalCode": "12345"}

    changed = api.patch(f"/api/v1/contacts/{ann['id']}/", {"last_name": "Lee-Park", "address": {}}, format="json")
    assert changed.status_code == 200, changed.content
    assert (changed.json()["last_name"], changed.json()["address"]) == ("Lee-Park", {})
    bad = api.patch(f"/api/v1/contacts/{ann['id']}/", {"address": "not an object"}, format="json")
    assert bad.status_code == 400 and "address" in bad.json()


def test_the_timeline_endpoint_lists_events_newest_first(api, segment, drain):
    client, _ = segment
    base = datetime(2024, 5, 1, tzinfo=UTC)
    post(client, "/v1/identify", {"userId": "u1", "traits": {"email": "t@example.com"}, "timestamp": iso(base)})
    for minutes, event in ((1, "Signed Up"), (5, "Order Completed"), (3, "Cart Viewed")):
        post(
            client,
            "/v1/track",
            {
                "userId": "u1",
                "event": event,
                "properties": {"n": minutes},
                "timestamp": iso(base + timedelta(minutes=minutes)),
            },
        )
    post(client, "/v1/page", {"userId": "u1", "name": "Pricing", "timestamp": iso(base + timedelta(minutes=7))})
    drain()
    contact = Contact.objects.get()
    body = api.get(f"/api/v1/contacts/{contact.pk}/events/").json()
    assert body["count"] == 4
    assert [(e["type"], e["name"]) for e in body["results"]] == [
        ("page", "Pricing"),
        ("track", "Order Completed"),
        ("track", "Cart Viewed"),
        ("track", "Signed Up"),
    ]
    assert body["results"][1]["properties"] == {"n": 5}
    assert body["results"][1]["timestamp"].startswith("2024-05-01T00:05:00")
    paged = api.get(f"/api/v1/contacts/{contact.pk}/events/", {"limit": 2, "offset": 2}).json()
    assert [e["name"] for e in paged["results"]] == ["Cart Viewed", "Signed Up"]
    assert api.get("/api/v1/contacts/999999/events/").status_code == 404


def test_mailing_lists_are_listed_and_created(api):
    assert api.post("/api/v1/mailing-lists/", {"list_id": "news", "name": "News"}, format="json").status_code == 201
    duplicate = api.post("/api/v1/mailing-lists/", {"list_id": "news", "name": "Again"}, format="json")
    assert duplicate.status_code == 400 and "list_id" in duplicate.json()
    body = api.get("/api/v1/mailing-lists/").json()
    assert body["results"] == [{"list_id": "news", "name": "News", "description": ""}]
    assert MailingList.objects.get().name == "News"


# --- staff edits beat older messages -----------------------------------------------------------
def test_an_api_edit_is_not_overwritten_by_an_older_message(api, segment, drain):
    client, _ = segment
    PropertyDefinition.objects.create(name="plan", type="text")
    post(
        client,
        "/v1/identify",
        {"userId": "u1", "traits": {"email": "e@example.com", "firstName": "Eve", "plan": "free"}},
    )
    drain()
    contact = Contact.objects.get()
    edit = api.patch(
        f"/api/v1/contacts/{contact.pk}/", {"first_name": "Evelyn", "properties": {"plan": "pro"}}, format="json"
    )
    assert edit.status_code == 200, edit.content
    # A message sent before the edit (a retry, a slow forward) arrives after it.
    an_hour_ago = iso(datetime.now(UTC) - timedelta(hours=1))
    post(
        client,
        "/v1/identify",
        {"userId": "u1", "traits": {"firstName": "Eve", "plan": "free"}, "timestamp": an_hour_ago},
    )
    drain()
    contact.refresh_from_db()
    assert (contact.first_name, contact.properties["plan"]) == ("Evelyn", "pro")
    # A newer message still wins.
    post(client, "/v1/identify", {"userId": "u1", "traits": {"firstName": "Evie"}})
    drain()
    contact.refresh_from_db()
    assert contact.first_name == "Evie"


def test_an_admin_edit_is_not_overwritten_by_an_older_message(staff, segment, drain):
    client, _ = segment
    post(client, "/v1/identify", {"userId": "u1", "traits": {"email": "a@example.com", "lastName": "Smith"}})
    drain()
    contact = Contact.objects.get()
    response = staff.post(
        f"/admin/contacts/contact/{contact.pk}/change/",
        {
            "email": "a@example.com",
            "user_id": "u1",
            "first_name": "",
            "last_name": "Smythe",
            "phone": "",
            **{
                f"{prefix}-{k}": v
                for prefix in ("memberships", "audiences", "identities")
                for k, v in (("TOTAL_FORMS", "0"), ("INITIAL_FORMS", "0"))
            },
        },
    )
    assert response.status_code == 302, response.content[:2000]
    contact.refresh_from_db()
    assert contact.last_name == "Smythe"
    assert contact.stamps["last_name"] > contact.stamps["email"]
    post(
        client,
        "/v1/identify",
        {"userId": "u1", "traits": {"lastName": "Smith"}, "timestamp": iso(datetime.now(UTC) - timedelta(minutes=5))},
    )
    drain()
    contact.refresh_from_db()
    assert contact.last_name == "Smythe"


# --- valid emails only -------------------------------------------------------------------------
def test_an_invalid_email_is_not_stored_and_the_row_says_why(segment, drain):
    """Loops' own docs print `[email protected]` where an address was obfuscated."""
    client, _ = segment
    post(client, "/v1/identify", {"userId": "u1", "traits": {"email": "[email protected]", "plan": "pro"}})
    drain()
    row = InboxMessage.objects.get()
    assert row.status == "processed"
    assert any("not a valid email address" in w for w in row.warnings)
    contact = Contact.objects.get()
    assert contact.email is None
    # A real address later fills it in.
    post(client, "/v1/identify", {"userId": "u1", "traits": {"email": "Real@Example.com"}})
    drain()
    contact.refresh_from_db()
    assert contact.email == "real@example.com"


def test_loops_refuses_to_create_a_contact_with_an_invalid_email(db, drain):
    integration, key = make_integration("loops")
    post(SegmentClient(key), "/v1/identify", {"userId": "u1", "traits": {"email": "[email protected]"}})
    drain()
    row = InboxMessage.objects.get()
    assert row.status == "refused"
    assert "missing email" in row.reason and "not a valid email address" in row.reason
    assert row.next_attempt_at is None  # a partner rule: never retried
    assert not Contact.objects.exists()


# --- partners keep to their own data -------------------------------------------------------------
def test_retently_unassigns_only_what_it_assigned(db, drain):
    """Retently's rule (a defined property the event does not carry is unassigned) must not wipe
    what Loops or Segment set on the same person."""
    PropertyDefinition.objects.create(name="plan", type="text")
    PropertyDefinition.objects.create(name="country", type="text")
    PropertyDefinition.objects.create(name="favoriteColor", type="text")
    _, segment_key = make_integration("segment")
    _, retently_key = make_integration("retently")
    post(
        SegmentClient(segment_key),
        "/v1/identify",
        {"userId": "u1", "traits": {"email": "r@example.com", "favoriteColor": "blue", "plan": "pro"}},
    )
    drain()
    retently = SegmentClient(retently_key)
    post(
        retently,
        "/v1/track",
        {"userId": "u1", "event": "Order", "properties": {"email": "r@example.com", "country": "USA"}},
    )
    drain()
    contact = Contact.objects.get()
    assert contact.properties == {"favoriteColor": "blue", "plan": "pro", "country": "USA"}
    # The next event without country unassigns it: Retently set it. Segment's values stay.
    post(retently, "/v1/track", {"userId": "u1", "event": "Order", "properties": {"email": "r@example.com"}})
    drain()
    contact.refresh_from_db()
    assert contact.properties == {"favoriteColor": "blue", "plan": "pro"}


def test_retently_keeps_its_lowercase_rule_for_the_properties_it_manages(db, drain):
    PropertyDefinition.objects.create(name="signup_date", type="date")
    _, key = make_integration("retently", managed_properties="signup_date")
    post(
        SegmentClient(key),
        "/v1/track",
        {"userId": "u1", "event": "Order", "properties": {"email": "d@example.com", "Signup Date": "01/30/2020"}},
    )
    drain()
    assert Contact.objects.get().properties == {"signup_date": "2020-01-30"}
