"""The email admin: templates refused with their line, previewed for a contact and test-sent to a
staff address; the send log's filters, search, attempts and retry."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from campaigns.email.models import EmailEvent, EmailSend, EmailTemplate, SendStatus
from common.workqueue.run import run_due
from tests.campaigns.factories import fresh, make_contact, make_template, schedule

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_caller_checks")]


def test_the_email_pages_load(staff):
    template = make_template()
    send = schedule(make_contact(), template)
    run_due(types=["email_send"])
    EmailEvent.objects.create(esp="Postmark", event_id="1", kind="hard_bounce", event_type="bounced", send=send)
    for name, args in (
        ("campaigns_emailtemplate_changelist", []),
        ("campaigns_emailtemplate_add", []),
        ("campaigns_emailtemplate_change", [template.pk]),
        ("campaigns_emailsend_changelist", []),
        ("campaigns_emailsend_change", [send.pk]),
        ("campaigns_emailevent_changelist", []),
        ("campaigns_emailevent_change", [EmailEvent.objects.get().pk]),
    ):
        response = staff.get(reverse(f"admin:{name}", args=args))
        assert response.status_code == 200, name
    page = staff.get(reverse("admin:campaigns_emailsend_change", args=[send.pk])).content.decode()
    assert "250 2.0.0 Ok" in page or "accepted" in page  # the attempt with the server's answer


def test_a_template_that_does_not_compile_is_refused_with_its_line(staff):
    response = staff.post(
        reverse("admin:campaigns_emailtemplate_add"),
        {"name": "Broken", "subject": "Hi", "html": "<p>a</p>\n{% if x %}", "text": "", "logo_url": ""},
    )
    assert response.status_code == 200
    assert "line 2:" in response.content.decode()
    assert not EmailTemplate.objects.exists()
    ok = staff.post(
        reverse("admin:campaigns_emailtemplate_add"),
        {"name": "Fine", "subject": "Hi {{ contact.first_name }}", "html": "<p>a</p>", "text": "", "logo_url": ""},
    )
    assert ok.status_code == 302
    assert EmailTemplate.objects.get().name == "Fine"


def test_preview_against_a_chosen_contact(staff):
    template = make_template(html="<p>Dear {{ contact.first_name }} ({{ contact.properties.favoriteColor }})</p>")
    contact = make_contact("grace@example.com", first_name="Grace", properties={"favoriteColor": "violet"})
    url = reverse("admin:campaigns_emailtemplate_preview_one", args=[template.pk])
    page = staff.get(url, {"contact": "grace@example.com"}).content.decode()
    assert "Hello Grace" in page and "Dear Grace (violet)" in page
    assert staff.get(url, {"contact": str(contact.pk)}).status_code == 200
    assert "No contact with that id or email" in staff.get(url, {"contact": "nobody@x.org"}).content.decode()


def test_send_test_goes_to_the_staff_address_and_stays_out_of_the_rules(staff, settings):
    settings.EMAIL_DAILY_CAP_PER_CONTACT = 1
    template = make_template()
    contact = make_contact("ada@example.com", first_name="Ada")
    from contacts.services import contact_unsubscribe

    contact_unsubscribe(contacts=[contact])  # a test still goes: it is for staff, not to the contact
    url = reverse("admin:campaigns_emailtemplate_send_test_one", args=[template.pk])
    assert staff.get(url).status_code == 200
    for _ in range(2):
        response = staff.post(url, {"to": "staff@example.com", "contact": "ada@example.com"})
        assert response.status_code == 302
    assert [m.to for m in mail.outbox] == [["staff@example.com"], ["staff@example.com"]]
    assert mail.outbox[0].subject == "Hello Ada"
    sends = EmailSend.objects.filter(purpose="test")
    assert sends.count() == 2 and {s.status for s in sends} == {SendStatus.SENT}
    bad = staff.post(url, {"to": "not an address", "contact": ""})
    assert bad.status_code == 200 and "staff address" in bad.content.decode()


def test_the_send_log_searches_an_exact_address_and_filters(staff):
    template = make_template()
    schedule(make_contact("ada@example.com"), template)
    schedule(make_contact("bob@example.com"), template)
    url = reverse("admin:campaigns_emailsend_changelist")
    page = staff.get(url, {"q": "ADA@example.com"}).content.decode()
    assert "ada@example.com" in page and "bob@example.com" not in page
    assert staff.get(url, {"status__exact": "failed", "purpose__exact": "loop"}).status_code == 200
    assert staff.get(url, {"template__id__exact": template.pk}).status_code == 200


def test_the_retry_action_sends_failed_sends_again_and_leaves_the_rest(staff, use_smtp, frozen):
    template = make_template()
    failed = schedule(make_contact("refused@example.com"), template)
    sent = schedule(make_contact("fine@example.com"), template)
    use_smtp.refuse_next(550, "no such user")
    run_due(types=["email_send"])
    assert fresh(failed).status == SendStatus.FAILED
    response = staff.post(
        reverse("admin:campaigns_emailsend_changelist"),
        {"action": "retry_failed", "_selected_action": [failed.pk, sent.pk]},
        follow=True,
    )
    text = response.content.decode()
    assert "1 failed send(s) queued to send again now" in text and "1 not failed" in text
    run_due(types=["email_send"])
    assert fresh(failed).status == SendStatus.SENT
    assert len(use_smtp.to("fine@example.com")) == 1  # never sent twice


def test_the_retry_button_asks_first(staff, use_smtp, frozen):
    failed = schedule(make_contact("refused@example.com"), make_template())
    use_smtp.refuse_next(550, "no such user")
    run_due(types=["email_send"])
    url = reverse("admin:campaigns_emailsend_retry_one", args=[failed.pk])
    assert "Yes, send it again" in staff.get(url).content.decode()
    assert fresh(failed).status == SendStatus.FAILED
    assert staff.post(url).status_code == 302
    assert fresh(failed).status == SendStatus.SCHEDULED
