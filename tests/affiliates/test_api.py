"""/api/v1/affiliates/, /offers/ and /conversions/ as CONTRACT.md ("Affiliates") shapes them; bad
input is a 400 naming the field."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from affiliates.models import Affiliate, Conversion
from contacts.models import Contact
from tests.affiliates.conftest import make_affiliate, make_offer

AFFILIATE_FIELDS = {
    "id",
    "email",
    "first_name",
    "last_name",
    "address",
    "status",
    "offer",
    "referral_code",
    "referral_link",
    "properties",
    "contact",
}
CONVERSION_FIELDS = {
    "id",
    "affiliate",
    "order_id",
    "amount",
    "currency",
    "commission",
    "status",
    "reason",
    "created_at",
}


@pytest.fixture
def api(db):
    user = get_user_model().objects.create_user("script", password="x", is_staff=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def conversion(affiliate, order_id, **fields):
    values = {
        "affiliate": affiliate,
        "order_id": order_id,
        "amount": Decimal("100"),
        "currency": "EUR",
        "commission": Decimal("10"),
        "order_at": datetime(2024, 5, 1, tzinfo=UTC),
    }
    values.update(fields)
    return Conversion.objects.create(**values)


# --- offers -----------------------------------------------------------------------------------------------
def test_offers_are_created_listed_and_changed(api):
    body = {
        "name": "Spring",
        "commission_type": "flat_item",
        "commission_value": "2.5",
        "sku_rates": {"SKU-1": 4},
        "cookie_days": 45,
        "landing_url": "https://shop.example/spring",
    }
    created = api.post("/api/v1/offers/", body, format="json")
    assert created.status_code == 201, created.json()
    offer = created.json()
    assert {k: offer[k] for k in ("id", "name", "commission_type", "commission_value", "sku_rates", "cookie_days")} == {
        "id": offer["id"],
        "name": "Spring",
        "commission_type": "flat_item",
        "commission_value": "2.50",
        "sku_rates": {"SKU-1": 4},
        "cookie_days": 45,
    }
    changed = api.patch(f"/api/v1/offers/{offer['id']}/", {"cookie_days": 7}, format="json")
    assert changed.json()["cookie_days"] == 7
    listed = api.get("/api/v1/offers/").json()
    assert set(listed) == {"count", "next", "previous", "results"}
    assert [o["name"] for o in listed["results"]] == ["Spring"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "commission_type": "lots"}, "commission_type"),
        ({"name": "x", "commission_value": "-1"}, "commission_value"),
        ({"name": "x", "commission_value": "150"}, "commission_value"),
        ({"name": "x", "sku_rates": ["SKU"]}, "sku_rates"),
        ({"name": "x", "sku_rates": {"SKU": "ten"}}, "sku_rates"),
        ({"name": "x", "sku_rates": {"SKU": -2}}, "sku_rates"),
        ({"name": "x", "cookie_days": -1}, "cookie_days"),
        ({"name": "x", "landing_url": "not a url"}, "landing_url"),
        ({}, "name"),
    ],
)
def test_bad_offers_are_refused_naming_the_field(api, body, field):
    response = api.post("/api/v1/offers/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()


# --- affiliates -------------------------------------------------------------------------------------------
@override_settings(SITE_URL="https://yard.example")
def test_affiliates_are_created_with_a_code_and_linked_to_their_contact(api):
    offer = make_offer()
    contact = Contact.objects.create(email="ann@example.com")
    response = api.post(
        "/api/v1/affiliates/",
        {
            "email": "Ann@Example.com",
            "first_name": "Ann",
            "last_name": "Lee",
            "offer": offer.pk,
            "status": "active",
            "address": {"city": "Lyon"},
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == AFFILIATE_FIELDS
    assert (body["email"], body["status"], body["offer"], body["contact"]) == (
        "ann@example.com",
        "active",
        offer.pk,
        contact.pk,
    )
    assert body["referral_link"] == f"https://yard.example/r/{body['referral_code']}"
    assert body["properties"] == {} and body["address"] == {"city": "Lyon"}
    # Found by email, whatever its case.
    listed = api.get("/api/v1/affiliates/?email=ANN@example.com").json()
    assert [a["id"] for a in listed["results"]] == [body["id"]]
    assert api.get("/api/v1/affiliates/?email=nobody@example.com").json()["count"] == 0


def test_a_chosen_code_and_a_status_change(api):
    response = api.post("/api/v1/affiliates/", {"email": "b@example.com", "referral_code": "bob-10"}, format="json")
    assert response.json()["referral_code"] == "BOB-10"
    assert response.json()["status"] == "pending"
    pk = response.json()["id"]
    changed = api.patch(f"/api/v1/affiliates/{pk}/", {"status": "disabled", "last_name": "Ross"}, format="json")
    assert (changed.json()["status"], changed.json()["last_name"]) == ("disabled", "Ross")
    assert Affiliate.objects.get().status_changed_at is not None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "email"),
        ({"email": "nope"}, "email"),
        ({"email": "c@example.com", "status": "great"}, "status"),
        ({"email": "c@example.com", "offer": 999}, "offer"),
        ({"email": "c@example.com", "referral_code": "a b"}, "referral_code"),
        ({"email": "c@example.com", "referral_code": "TAKEN"}, "referral_code"),
        ({"email": "taken@example.com"}, "email"),
        ({"email": "c@example.com", "address": "1 Main St"}, "address"),
    ],
)
def test_bad_affiliates_are_refused_naming_the_field(api, body, field):
    make_affiliate("TAKEN", email="taken@example.com")
    response = api.post("/api/v1/affiliates/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_no_delete_on_affiliates(api):
    pk = make_affiliate("X1").pk
    assert api.delete(f"/api/v1/affiliates/{pk}/").status_code == 405


# --- conversions ------------------------------------------------------------------------------------------
def test_conversions_are_listed_newest_first_and_filtered(api):
    peter, other = make_affiliate("PETER"), make_affiliate("OTHER", email="o@example.com")
    first = conversion(peter, "o-1")
    second = conversion(peter, "o-2", status="approved", commission=Decimal("12.3456"))
    conversion(other, "o-3", status="unqualified", reason="self-referral", commission=0)
    body = api.get("/api/v1/conversions/").json()
    assert body["count"] == 3
    assert set(body["results"][0]) == CONVERSION_FIELDS
    by_order = {c["order_id"]: c for c in body["results"]}
    assert by_order["o-2"]["commission"] == "12.3456" and by_order["o-1"]["commission"] == "10.00"
    assert by_order["o-1"]["amount"] == "100.00" and by_order["o-1"]["currency"] == "EUR"
    assert by_order["o-3"]["reason"] == "self-referral"
    mine = api.get(f"/api/v1/conversions/?affiliate={peter.pk}").json()["results"]
    assert [c["id"] for c in mine] == [second.pk, first.pk]
    approved = api.get(f"/api/v1/conversions/?affiliate={peter.pk}&status=approved").json()["results"]
    assert [c["id"] for c in approved] == [second.pk]


@pytest.mark.parametrize("query", ["affiliate=x", "affiliate=0", "status=paid", "affiliate=99999999999999999999"])
def test_bad_conversion_filters_are_a_400_naming_the_field(api, query):
    response = api.get(f"/api/v1/conversions/?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()


def test_approve_and_deny(api):
    peter = make_affiliate("PETER")
    pending, other = conversion(peter, "o-1"), conversion(peter, "o-2")
    approved = api.post(f"/api/v1/conversions/{pending.pk}/approve/")
    assert approved.status_code == 200
    assert approved.json()["status"] == "approved"
    refused = api.post(f"/api/v1/conversions/{pending.pk}/deny/")
    assert refused.status_code == 400
    assert refused.json() == {"status": ["approved conversions cannot be denied; only a refund reverses them"]}
    assert api.post(f"/api/v1/conversions/{other.pk}/deny/").json()["status"] == "denied"
    again = api.post(f"/api/v1/conversions/{other.pk}/approve/")
    assert again.status_code == 400
    assert again.json() == {"status": ["only a pending conversion can be approved; denied ones cannot"]}
    assert api.post("/api/v1/conversions/999999/approve/").status_code == 404


def test_conversions_are_read_only(api):
    pk = conversion(make_affiliate("PETER"), "o-1").pk
    assert api.patch(f"/api/v1/conversions/{pk}/", {"status": "approved"}, format="json").status_code == 405
    assert api.post("/api/v1/conversions/", {}, format="json").status_code == 405


def test_the_api_needs_staff(db):
    assert APIClient().get("/api/v1/affiliates/").status_code in (401, 403)


def test_a_contact_that_appears_later_is_linked(api, segment_kind):
    from tests.affiliates.conftest import apply, identify

    created = api.post("/api/v1/affiliates/", {"email": "late@example.com"}, format="json").json()
    assert created["contact"] is None
    apply(segment_kind, identify({"email": "LATE@example.com"}, user_id="late-1"))
    contact = Contact.objects.get(user_id="late-1")
    assert api.get(f"/api/v1/affiliates/{created['id']}/").json()["contact"] == contact.pk
    assert api.get("/api/v1/affiliates/").json()["results"][0]["contact"] == contact.pk
