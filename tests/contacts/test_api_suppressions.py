"""The suppressions API: the bulk POST of the contract, a filtered, paginated GET, DELETE to lift."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from contacts.models import Suppression
from contacts.services import email_md5, suppressions_add

SUPPRESSIONS = "/api/v1/suppressions/"


@pytest.fixture
def api(db):
    user = get_user_model().objects.create_user("script", password="x", is_staff=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def rows(db):
    suppressions_add(emails=["a@example.com", "b@example.com"], keep_plain=True, note="list A")
    suppressions_add(emails=["c@example.com"], reason="bounced")
    suppressions_add(user_ids=["u9"], reason="erased")
    old = Suppression.objects.get(email_md5=email_md5("a@example.com"))
    Suppression.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    return Suppression.objects.all()


def test_post_keeps_its_contract(api, db):
    response = api.post(SUPPRESSIONS, {"emails": ["x@example.com"]}, format="json")
    assert response.status_code == 200
    assert response.json() == {"received": 1, "created": 1, "existing": 0}


def test_get_lists_newest_first_with_pages(api, rows):
    response = api.get(SUPPRESSIONS, {"limit": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4
    assert len(body["results"]) == 2 and body["next"]
    first = body["results"][0]
    assert set(first) == {"id", "email_md5", "email", "user_id", "reason", "note", "created_at"}
    everything = api.get(SUPPRESSIONS).json()["results"]
    assert everything[-1]["email"] == "a@example.com"  # the oldest last
    assert [r["created_at"] for r in everything] == sorted((r["created_at"] for r in everything), reverse=True)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"reason": "bounced"}, {email_md5("c@example.com")}),
        ({"email": "B@Example.com"}, {email_md5("b@example.com")}),
        ({"md5": email_md5("c@example.com").upper()}, {email_md5("c@example.com")}),
        ({"user_id": "u9"}, {None}),
        ({"created_before": (timezone.now() - timedelta(days=5)).isoformat()}, {email_md5("a@example.com")}),
    ],
)
def test_get_filters(api, rows, params, expected):
    response = api.get(SUPPRESSIONS, params)
    assert response.status_code == 200, response.json()
    assert {r["email_md5"] for r in response.json()["results"]} == expected


def test_created_after_is_inclusive(api, rows):
    since = (timezone.now() - timedelta(days=5)).isoformat()
    assert api.get(SUPPRESSIONS, {"created_after": since}).json()["count"] == 3


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"reason": "because"}, "reason"),
        ({"md5": "xyz"}, "md5"),
        ({"email": "not-an-address"}, "email"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"user_id": "u" * 300}, "user_id"),
    ],
)
def test_bad_filters_are_400_naming_the_parameter(api, rows, params, field):
    response = api.get(SUPPRESSIONS, params)
    assert response.status_code == 400
    assert field in response.json()


def test_delete_lifts_one(api, rows):
    target = Suppression.objects.get(reason="bounced")
    assert api.get(f"{SUPPRESSIONS}{target.pk}/").json()["reason"] == "bounced"
    response = api.delete(f"{SUPPRESSIONS}{target.pk}/")
    assert response.status_code == 204
    assert not Suppression.objects.filter(pk=target.pk).exists()
    assert Suppression.objects.count() == 3
    assert api.delete(f"{SUPPRESSIONS}{target.pk}/").status_code == 404


@pytest.mark.parametrize("pk", ["abc", "99999999999999999999999", "-1"])
def test_odd_ids_are_404(api, rows, pk):
    assert api.delete(f"{SUPPRESSIONS}{pk}/").status_code == 404


def test_staff_only(db, rows):
    assert APIClient().get(SUPPRESSIONS).status_code in (401, 403)
    assert APIClient().delete(f"{SUPPRESSIONS}{rows.first().pk}/").status_code in (401, 403)
    assert Suppression.objects.count() == 4


def test_schema_documents_get_post_and_delete(api, db):
    paths = api.get("/api/schema/", {"format": "json"}).json()["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/suppressions/"])
    assert "delete" in paths["/api/v1/suppressions/{id}/"]
    names = {p["name"] for p in paths["/api/v1/suppressions/"]["get"]["parameters"]}
    assert {"reason", "email", "md5", "user_id", "created_after", "created_before", "limit", "offset"} <= names
