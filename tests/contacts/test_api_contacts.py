"""The staff REST API: contacts, property definitions, bulk suppressions, the schema."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from contacts.models import (
    AudienceMembership,
    Contact,
    ErasureRecord,
    ListMembership,
    MailingList,
    PropertyDefinition,
    Suppression,
)
from contacts.services import email_md5

CONTACTS = "/api/v1/contacts/"
PROPERTIES = "/api/v1/contact-properties/"
SUPPRESSIONS = "/api/v1/suppressions/"


@pytest.fixture
def api(db):
    user = get_user_model().objects.create_user("script", password="x", is_staff=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def data(db):
    PropertyDefinition.objects.create(name="plan", type="text")
    PropertyDefinition.objects.create(name="seats", type="number")
    PropertyDefinition.objects.create(name="tags", type="collection")
    news = MailingList.objects.create(list_id="news", name="News")
    MailingList.objects.create(list_id="promo", name="Promotions")
    now = timezone.now()
    ada = Contact.objects.create(email="ada@example.com", user_id="u1", properties={"plan": "pro"}, created_at=now)
    Contact.objects.create(email="bob@example.com", user_id="u2", created_at=now)
    ListMembership.objects.create(contact=ada, mailing_list=news)
    AudienceMembership.objects.create(contact=ada, key="big_spenders", member=True)
    AudienceMembership.objects.create(contact=ada, key="churned", member=False)
    return {"ada": ada}


# --- auth ---------------------------------------------------------------------------------------
def test_needs_a_staff_token(db, data):
    assert APIClient().get(CONTACTS).status_code == 401
    user = get_user_model().objects.create_user("plain", password="x")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert client.get(CONTACTS).status_code == 403


def test_admin_session_works(client, db, data):
    get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client.login(username="boss", password="pw")
    assert client.get(CONTACTS).status_code == 200


# --- contacts -----------------------------------------------------------------------------------
def test_list_shape_and_filters(api, data):
    body = api.get(CONTACTS, {"email": "ADA@example.com"}).json()
    assert body["count"] == 1
    (ada,) = body["results"]
    assert set(ada) == {
        "id",
        "email",
        "user_id",
        "first_name",
        "last_name",
        "phone",
        "address",
        "subscribed",
        "properties",
        "mailing_lists",
        "audiences",
        "created_at",
        "updated_at",
    }
    assert ada["email"] == "ada@example.com"
    assert ada["mailing_lists"] == ["news"]
    assert ada["audiences"] == ["big_spenders"]
    assert ada["properties"] == {"plan": "pro"}
    assert [c["email"] for c in api.get(CONTACTS, {"user_id": "u2"}).json()["results"]] == ["bob@example.com"]
    assert api.get(CONTACTS, {"user_id": "nobody"}).json()["count"] == 0
    assert api.get(CONTACTS).json()["count"] == 2


def test_list_costs_the_same_queries_for_more_contacts(api, data):
    with CaptureQueriesContext(connection) as few:
        api.get(CONTACTS)
    news = MailingList.objects.get(list_id="news")
    for n in range(10):
        contact = Contact.objects.create(email=f"c{n}@example.com")
        ListMembership.objects.create(contact=contact, mailing_list=news)
        AudienceMembership.objects.create(contact=contact, key="big_spenders")
    with CaptureQueriesContext(connection) as many:
        response = api.get(CONTACTS)
    assert response.json()["count"] == 12
    assert len(many) == len(few)


def test_create(api, data):
    response = api.post(
        CONTACTS,
        {"email": "New@Example.com", "properties": {"seats": "12", "tags": "a, b"}, "mailing_lists": ["promo"]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["email"] == "new@example.com"
    assert body["user_id"] is None
    assert body["properties"] == {"seats": 12, "tags": ["a", "b"]}
    assert body["mailing_lists"] == ["promo"]
    assert body["subscribed"] is True
    contact = Contact.objects.get(pk=body["id"])
    assert "seats" in contact.stamps


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"properties": {"plan": "x"}}, "email"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "ada@example.com"}, "email"),
        ({"user_id": "u1"}, "user_id"),
        ({"email": "z@example.com", "properties": {"unknown_thing": 1}}, "properties"),
        ({"email": "z@example.com", "properties": {"seats": "many"}}, "properties"),
        ({"email": "z@example.com", "mailing_lists": ["nope"]}, "mailing_lists"),
        ({"email": "z@example.com", "subscribed": "maybe"}, "subscribed"),
    ],
)
def test_create_validation_names_the_field(api, data, payload, field):
    response = api.post(CONTACTS, payload, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()


def test_property_errors_name_the_property(api, data):
    response = api.post(CONTACTS, {"email": "z@example.com", "properties": {"seats": "many"}}, format="json")
    assert "seats" in response.json()["properties"]
    assert "number" in response.json()["properties"]["seats"]


def test_patch_changes_only_what_is_sent(api, data):
    ada = data["ada"]
    response = api.patch(
        f"{CONTACTS}{ada.pk}/",
        {"properties": {"seats": 3, "plan": None}, "mailing_lists": ["promo"]},
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["properties"] == {"seats": 3}
    assert body["mailing_lists"] == ["promo"]
    assert body["email"] == "ada@example.com"
    assert ListMembership.objects.get(contact=ada, mailing_list__list_id="news").subscribed is False


def test_patch_subscribed_unsubscribes_and_resubscribes(api, data):
    url = f"{CONTACTS}{data['ada'].pk}/"
    assert api.patch(url, {"subscribed": False}, format="json").json()["subscribed"] is False
    assert Suppression.objects.filter(email_md5=email_md5("ada@example.com"), reason="unsubscribed").exists()
    assert api.patch(url, {"subscribed": True}, format="json").json()["subscribed"] is True
    assert not Suppression.objects.filter(email_md5=email_md5("ada@example.com")).exists()


def test_patch_cannot_take_another_contacts_email(api, data):
    response = api.patch(f"{CONTACTS}{data['ada'].pk}/", {"email": "BOB@example.com"}, format="json")
    assert response.status_code == 400
    assert "email" in response.json()


def test_put_is_not_offered(api, data):
    assert api.put(f"{CONTACTS}{data['ada'].pk}/", {"email": "a@b.c"}, format="json").status_code == 405


def test_delete_erases_and_suppresses(api, data):
    ada = data["ada"]
    assert api.delete(f"{CONTACTS}{ada.pk}/").status_code == 204
    assert not Contact.objects.filter(pk=ada.pk).exists()
    assert ErasureRecord.objects.get(contact_pk=ada.pk).requested_by == "api:script"
    assert Suppression.objects.filter(email_md5=email_md5("ada@example.com"), reason="erased").exists()
    assert Suppression.objects.filter(user_id="u1", reason="erased").exists()
    again = api.post(CONTACTS, {"email": "ada@example.com"}, format="json")
    assert again.status_code == 400
    assert "suppressed" in again.json()["email"][0]
    assert api.delete(f"{CONTACTS}{ada.pk}/").status_code == 404


# --- property definitions -----------------------------------------------------------------------
def test_properties_list_and_create(api, data):
    assert [p["name"] for p in api.get(PROPERTIES).json()["results"]] == ["plan", "seats", "tags"]
    response = api.post(PROPERTIES, {"name": "signup_date", "type": "date"}, format="json")
    assert response.status_code == 201
    assert response.json()["source"] == "api"
    assert PropertyDefinition.objects.get(name="signup_date").type == "date"


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"name": "Signup Date", "type": "date"}, "name", "letters, digits and underscores"),
        ({"name": "plan", "type": "text"}, "name", "already exists"),
        ({"name": "x", "type": "colour"}, "type", "not a valid choice"),
        ({"type": "text"}, "name", "required"),
    ],
)
def test_property_validation(api, data, payload, field, words):
    response = api.post(PROPERTIES, payload, format="json")
    assert response.status_code == 400
    assert words in " ".join(response.json()[field])


# --- suppressions -------------------------------------------------------------------------------
def test_suppress_emails_idempotently(api, db):
    first = api.post(SUPPRESSIONS, {"emails": ["A@example.com", "b@example.com", "a@example.com"]}, format="json")
    assert first.status_code == 200
    assert first.json() == {"received": 2, "created": 2, "existing": 0}
    again = api.post(SUPPRESSIONS, {"emails": ["a@example.com"], "md5": [email_md5("c@example.com")]}, format="json")
    assert again.json() == {"received": 2, "created": 1, "existing": 1}
    assert Suppression.objects.filter(reason="uploaded").count() == 3


def test_suppress_many_md5s(api, db):
    digests = [email_md5(f"user{n}@example.com") for n in range(50_000)]
    response = api.post(SUPPRESSIONS, {"md5": digests}, format="json")
    assert response.json() == {"received": 50_000, "created": 50_000, "existing": 0}
    assert Suppression.objects.count() == 50_000


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "emails"),
        ({"emails": []}, "emails"),
        ({"emails": ["ok@example.com", "nope"]}, "emails"),
        ({"md5": ["xyz"]}, "md5"),
        ({"emails": ["a@example.com"], "reason": "because"}, "reason"),
    ],
)
def test_suppression_validation(api, db, payload, field):
    response = api.post(SUPPRESSIONS, payload, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()


def test_bad_entry_is_reported_by_index(api, db):
    response = api.post(SUPPRESSIONS, {"emails": ["ok@example.com", "nope"]}, format="json")
    assert "1" in response.json()["emails"]
    assert not Suppression.objects.exists()


def test_more_than_fifty_thousand_is_refused(api, db):
    response = api.post(SUPPRESSIONS, {"md5": ["0" * 32] * 50_001}, format="json")
    assert response.status_code == 400
    assert "md5" in response.json()


# --- schema -------------------------------------------------------------------------------------
def test_schema_documents_the_endpoints(api, db):
    response = api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ("/api/v1/contacts/", "/api/v1/contacts/{id}/", "/api/v1/contact-properties/", "/api/v1/suppressions/"):
        assert path in paths
    parameters = {p["name"] for p in paths["/api/v1/contacts/"]["get"]["parameters"]}
    assert {"email", "user_id", "limit", "offset"} <= parameters
    assert "put" not in paths["/api/v1/contacts/{id}/"]


def test_docs_page(client, db):
    get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client.login(username="boss", password="pw")
    assert client.get("/api/docs/").status_code == 200


def test_nul_characters_are_refused_naming_the_field(api, data):
    """PostgreSQL cannot store or even compare text holding NUL: a 400, never a 500."""
    for field in ("email", "user_id"):
        response = api.get(CONTACTS, {field: "a\x00b"})
        assert response.status_code == 400
        assert field in response.json()
    response = api.post(
        CONTACTS,
        {"email": "n@example.com", "properties": {"plan": "p\x00ro", "bad\x00name": 1, "tags": ["a", "b\x00"]}},
        format="json",
    )
    assert response.status_code == 400
    errors = response.json()["properties"]
    assert set(errors) == {"plan", "bad\\u0000name", "tags"}
    assert not Contact.objects.filter(email="n@example.com").exists()


def test_a_property_value_nested_too_deeply_is_refused(api, data):
    deep: list = []
    for _ in range(300):
        deep = [deep]
    response = api.post(CONTACTS, {"email": "d@example.com", "properties": {"tags": deep}}, format="json")
    assert response.status_code == 400
    assert "tags" in response.json()["properties"]
