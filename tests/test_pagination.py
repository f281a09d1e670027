"""The staff API's `?limit=`: a huge value is read as the ceiling, never a server error."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from contacts.models import Contact

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_superuser("staff", "staff@example.com", "pw-123456"))
    return client


def test_a_limit_beyond_any_integer_is_read_as_the_ceiling(api):
    Contact.objects.bulk_create([Contact(user_id=f"u{n}") for n in range(3)])
    response = api.get("/api/v1/contacts/", {"limit": "18983587050091970560000", "offset": "-14523"})
    assert response.status_code == 200
    body = response.json()
    assert (body["count"], len(body["results"]), body["next"]) == (3, 3, None)


def test_a_limit_is_kept_below_the_ceiling(api):
    Contact.objects.bulk_create([Contact(user_id=f"u{n}") for n in range(3)])
    body = api.get("/api/v1/contacts/", {"limit": "2"}).json()
    assert len(body["results"]) == 2 and "limit=2" in body["next"]
