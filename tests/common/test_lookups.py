"""`field__any`: the same rows as `field__in`, on PostgreSQL as one array parameter."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from contacts.models import Contact, ContactIdentity

pytestmark = pytest.mark.django_db

AWKWARD = ["a,b", '"quoted"', "{braces}", "back\\slash", "it's", "NULL", " padded ", "é✓", ""]


def test_any_matches_exactly_the_listed_values_whatever_they_hold():
    contacts = {
        value: Contact.objects.create(user_id=value or None, email=f"{n}@example.com")
        for n, value in enumerate(AWKWARD)
    }
    Contact.objects.create(user_id="not listed")
    wanted = [v for v in AWKWARD if v]
    found = set(Contact.objects.filter(user_id__any=wanted).values_list("user_id", flat=True))
    assert found == set(wanted)
    assert set(Contact.objects.filter(pk__any=[contacts["NULL"].pk, 10**12])) == {contacts["NULL"]}


def test_any_works_on_relations_in_subqueries_and_ors():
    first, second = Contact.objects.create(user_id="u1"), Contact.objects.create(user_id="u2")
    ContactIdentity.objects.create(contact=second, anonymous_id="anon-2")
    query = Q(user_id__any=["u1"]) | Q(
        pk__in=ContactIdentity.objects.filter(anonymous_id__any=["anon-2"]).values("contact")
    )
    assert set(Contact.objects.filter(query)) == {first, second}
    assert list(ContactIdentity.objects.filter(contact__any=[second.pk]).values_list("anonymous_id", flat=True)) == [
        "anon-2"
    ]


def test_an_empty_list_matches_nothing_and_leaves_the_rest_of_an_or():
    contact = Contact.objects.create(user_id="u1")
    assert not Contact.objects.filter(user_id__any=[]).exists()
    assert list(Contact.objects.filter(Q(user_id__any=[]) | Q(user_id="u1"))) == [contact]


def test_the_statement_has_one_placeholder_for_the_whole_list_on_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("elsewhere __any is the same IN as __in")
    values = [f"user-{n}" for n in range(500)]
    with CaptureQueriesContext(connection) as queries:
        list(Contact.objects.filter(user_id__any=values))
    (query,) = queries.captured_queries
    assert "= ANY(" in query["sql"] and " IN (" not in query["sql"]
