"""/api/v1/email-templates/ and /api/v1/email-sends/ as CONTRACT.md describes them."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from campaigns.email.models import EmailTemplate
from common.workqueue.run import run_due
from tests.campaigns.factories import make_contact, make_template, schedule

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_caller_checks")]

TEMPLATE_FIELDS = {"id", "name", "subject", "html", "text", "transactional", "logo_url"}
SEND_FIELDS = {"id", "contact", "to", "template", "purpose", "status", "reason", "due_at", "sent_at"}


@pytest.fixture
def api(db):
    from tests.test_admin_support import make_superuser

    client = APIClient()
    client.force_authenticate(make_superuser())
    return client


def test_templates_are_created_read_changed_and_deleted(api):
    created = api.post(
        "/api/v1/email-templates/",
        {
            "name": "Welcome",
            "subject": "Hi {{ contact.first_name }}",
            "html": "<p>Your plan: {{ contact.properties.plan }}</p>",
            "transactional": False,
            "logo_url": "https://example.com/logo.png",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert set(body) == TEMPLATE_FIELDS
    assert body["text"] == "" and body["logo_url"] == "https://example.com/logo.png"

    url = f"/api/v1/email-templates/{body['id']}/"
    changed = api.patch(url, {"subject": "Hello {{ contact.first_name }}"}, format="json")
    assert changed.status_code == 200
    assert changed.json()["subject"] == "Hello {{ contact.first_name }}"
    assert api.get("/api/v1/email-templates/").json()["results"][0]["name"] == "Welcome"
    assert api.delete(url).status_code == 204
    assert not EmailTemplate.objects.exists()


def test_a_template_that_does_not_compile_is_refused_naming_the_part_and_line(api):
    answer = api.post(
        "/api/v1/email-templates/",
        {"name": "Broken", "subject": "Hi", "html": "<p>one</p>\n<p>two</p>\n{% if contact.first_name %}<p>x</p>"},
        format="json",
    )
    assert answer.status_code == 400
    (message,) = answer.json()["html"]
    assert message.startswith("line 3: ")
    assert "endif" in message
    bad_subject = api.post(
        "/api/v1/email-templates/",
        {"name": "B2", "subject": "{{ contact.first_name|nofilter }}", "html": "x"},
        format="json",
    )
    assert bad_subject.status_code == 400
    assert "nofilter" in bad_subject.json()["subject"][0]
    template = make_template()
    patch = api.patch(f"/api/v1/email-templates/{template.pk}/", {"text": "{% for %}"}, format="json")
    assert patch.status_code == 400 and patch.json()["text"][0].startswith("line 1: ")


def test_a_template_in_use_is_not_deleted(api):
    template = make_template()
    schedule(make_contact(), template)
    answer = api.delete(f"/api/v1/email-templates/{template.pk}/")
    assert answer.status_code == 409
    assert answer.json()["code"] == "in_use"


def test_preview_renders_for_a_contact(api):
    template = make_template(html="<p>Hi {{ contact.first_name }}, {{ contact.properties.favoriteColor }}</p>")
    contact = make_contact(first_name="Grace", properties={"favoriteColor": "red"})
    answer = api.post(f"/api/v1/email-templates/{template.pk}/preview/", {"contact": contact.pk}, format="json")
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"subject", "html", "text"}
    assert body["subject"] == "Hello Grace"
    assert "Hi Grace, red" in body["html"] and "Hi Grace, red" in body["text"]
    missing = api.post(f"/api/v1/email-templates/{template.pk}/preview/", {"contact": 999999}, format="json")
    assert missing.status_code == 400 and "contact" in missing.json()
    no_contact = api.post(f"/api/v1/email-templates/{template.pk}/preview/", {}, format="json")
    assert no_contact.status_code == 400 and "contact" in no_contact.json()


def test_the_send_log_lists_and_filters(api, settings):
    template = make_template()
    ada, bob = make_contact("ada@example.com"), make_contact("bob@example.com")
    schedule(ada, template, key="a")
    schedule(bob, template, key="b", purpose="survey")
    run_due(types=["email_send"])
    rows = api.get("/api/v1/email-sends/").json()["results"]
    assert len(rows) == 2 and set(rows[0]) == SEND_FIELDS
    (row,) = api.get(f"/api/v1/email-sends/?contact={ada.pk}&status=sent&purpose=loop").json()["results"]
    assert (row["to"], row["template"], row["purpose"], row["status"]) == (
        "ada@example.com",
        template.pk,
        "loop",
        "sent",
    )
    assert row["sent_at"] and row["due_at"] and row["reason"] == ""
    assert api.get("/api/v1/email-sends/?purpose=survey").json()["count"] == 1
    assert api.get("/api/v1/email-sends/?status=skipped").json()["count"] == 0


@pytest.mark.parametrize(
    ("query", "field"), [("status=nope", "status"), ("purpose=spam", "purpose"), ("contact=abc", "contact")]
)
def test_a_bad_filter_is_a_400_naming_it(api, query, field):
    answer = api.get(f"/api/v1/email-sends/?{query}")
    assert answer.status_code == 400
    assert field in answer.json()


def test_the_api_needs_staff(db):
    assert APIClient().get("/api/v1/email-sends/").status_code in (401, 403)
    assert APIClient().get("/api/v1/email-templates/").status_code in (401, 403)
