"""Bounces and complaints through django-anymail's tracking webhooks, with the ESPs' own payload
shapes (as in anymail's tests for Postmark and SendGrid)."""

from __future__ import annotations

import base64
import json

import pytest
from django.core import mail
from django.test import Client

from campaigns.email.models import EmailEvent, SendStatus
from campaigns.email.signals import email_bounced, email_complained
from common.workqueue.run import run_due
from contacts.models import Suppression, SuppressionReason
from tests.campaigns.factories import fresh, make_contact, make_template, schedule

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_caller_checks")]


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": "esp:hook-secret"}


def post(esp: str, payload, *, auth: str = "esp:hook-secret"):
    headers = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}
    return Client().post(f"/anymail/{esp}/tracking/", json.dumps(payload), content_type="application/json", **headers)


def postmark_bounce(email: str, *, kind: str = "HardBounce", event_id: int = 901542550, message_id: str = "") -> dict:
    return {
        "RecordType": "Bounce",
        "ID": event_id,
        "Type": kind,
        "TypeCode": 1 if kind == "HardBounce" else 4096,
        "ServerID": 23,
        "Name": "Hard bounce" if kind == "HardBounce" else "Soft bounce",
        "MessageID": message_id or "2706ee8a-737c-4285-b032-ccd317af53ed",
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": email,
        "From": "sender@example.com",
        "BouncedAt": "2016-04-27T16:28:50.3963933-04:00",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Postmark event test",
        "Content": "...",
    }


def postmark_complaint(email: str, event_id: int = 901542551) -> dict:
    return {
        "RecordType": "SpamComplaint",
        "ID": event_id,
        "Type": "SpamComplaint",
        "TypeCode": 512,
        "Name": "Spam complaint",
        "Tag": "Test",
        "MessageID": "2706ee8a-737c-4285-b032-ccd317af53ed",
        "ServerID": 1234,
        "Description": "",
        "Details": "Test spam complaint details",
        "Email": email,
        "From": "sender@example.com",
        "BouncedAt": "2016-04-27T16:28:50.3963933-04:00",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": False,
        "Subject": "Postmark event test",
    }


@pytest.fixture
def delivered(frozen):
    """A contact who was sent a marketing email."""
    contact = make_contact("bouncy@example.com")
    send = schedule(contact, make_template())
    run_due(types=["email_send"])
    assert fresh(send).status == SendStatus.SENT
    return contact, fresh(send)


def test_a_hard_bounce_suppresses_the_address_at_once_even_for_transactional_mail(delivered):
    contact, send = delivered
    heard = []
    email_bounced.connect(lambda sender, **kw: heard.append(kw), weak=False, dispatch_uid="test-bounce")
    try:
        assert post("postmark", postmark_bounce("Bouncy@example.com")).status_code == 200
    finally:
        email_bounced.disconnect(dispatch_uid="test-bounce")
    suppression = Suppression.objects.get()
    assert suppression.reason == SuppressionReason.BOUNCED
    event = EmailEvent.objects.get()
    assert (event.kind, event.recipient, event.event_id, event.suppressed) == (
        "hard_bounce",
        "bouncy@example.com",
        "901542550",
        True,
    )
    assert event.send == send  # found by recipient: this was an SMTP send, Postmark's id is its own
    assert fresh(send).status == SendStatus.BOUNCED
    assert fresh(send).reason.startswith("hard bounce: smtp;550 5.1.1")
    assert heard[0]["hard"] is True and heard[0]["contact"] == contact

    mail.outbox.clear()
    receipt = schedule(contact, make_template(transactional=True))
    run_due(types=["email_send"])
    assert (fresh(receipt).status, fresh(receipt).reason) == (SendStatus.SKIPPED, "bounced")
    assert mail.outbox == []


def test_the_same_event_delivered_twice_is_acted_on_once(delivered):
    assert post("postmark", postmark_bounce("bouncy@example.com", kind="SoftBounce")).status_code == 200
    assert post("postmark", postmark_bounce("bouncy@example.com", kind="SoftBounce")).status_code == 200
    assert EmailEvent.objects.count() == 1


def test_soft_bounces_suppress_after_the_configured_count(delivered, settings):
    settings.EMAIL_SOFT_BOUNCE_LIMIT = 3
    for n in range(2):
        post("postmark", postmark_bounce("bouncy@example.com", kind="SoftBounce", event_id=100 + n))
    assert not Suppression.objects.exists()
    assert set(EmailEvent.objects.values_list("kind", flat=True)) == {"soft_bounce"}
    post("postmark", postmark_bounce("bouncy@example.com", kind="SoftBounce", event_id=102))
    suppression = Suppression.objects.get()
    assert suppression.reason == SuppressionReason.BOUNCED
    assert "3 soft bounces in 30 days" in suppression.note


def test_a_complaint_suppresses_and_unsubscribes(delivered):
    contact, send = delivered
    heard = []
    email_complained.connect(lambda sender, **kw: heard.append(kw), weak=False, dispatch_uid="test-complaint")
    try:
        assert post("postmark", postmark_complaint("bouncy@example.com")).status_code == 200
    finally:
        email_complained.disconnect(dispatch_uid="test-complaint")
    assert Suppression.objects.get().reason == SuppressionReason.COMPLAINED
    contact.refresh_from_db()
    assert contact.subscribed is False and "complained" in contact.subscription_reason
    assert fresh(send).status == SendStatus.COMPLAINED
    assert heard and heard[0]["send"].pk == send.pk


def test_a_bounce_after_an_unsubscribe_makes_the_suppression_a_bounce(delivered):
    from contacts.services import contact_unsubscribe

    contact, _ = delivered
    contact_unsubscribe(contacts=[contact])
    assert Suppression.objects.get().reason == SuppressionReason.UNSUBSCRIBED
    post("postmark", postmark_bounce("bouncy@example.com"))
    assert Suppression.objects.get().reason == SuppressionReason.BOUNCED


@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")
def test_sendgrid_bounces_match_the_send_by_the_id_we_gave_it(delivered):
    _, send = delivered
    events = [
        {
            "ip": "167.89.17.173",
            "status": "5.1.1",
            "smtp-id": send.message_id,
            "sg_event_id": "lC0Rc-FuQmKbnxCWxX1jRQ",
            "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
            "sg_message_id": "Lli-03HcQ5-JLybO9fXsJg.filter0077p1las1.21536.5717FC482.0",
            "tls": 1,
            "event": "bounce",
            "email": "bouncy@example.com",
            "timestamp": 1461095250,
            "type": "bounce",
        },
        {
            "response": "Email was deferred due to the following reason(s): [IPs were throttled by recipient server]",
            "sg_event_id": "b_syL5UiTvWC_Ky5L6Bs5Q",
            "sg_message_id": "u9Gvi3mzT6iC2poAb58_qQ.filter0465p1mdw1.8054.5718271B40.0",
            "event": "deferred",
            "email": "bouncy@example.com",
            "attempt": "1",
            "timestamp": 1461200990,
        },
    ]
    assert post("sendgrid", events).status_code == 200
    event = EmailEvent.objects.get()  # the deferral is the ESP's business: nothing recorded
    assert (event.esp, event.kind, event.send_id) == ("SendGrid", "hard_bounce", send.pk)
    assert Suppression.objects.get().reason == SuppressionReason.BOUNCED


@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")
def test_sendgrid_blocked_is_a_soft_bounce(delivered):
    post(
        "sendgrid",
        [
            {
                "event": "bounce",
                "type": "blocked",
                "status": "4.0.0",
                "reason": "450 4.2.1 try later",
                "email": "bouncy@example.com",
                "sg_event_id": "soft-1",
                "timestamp": 1461095250,
            }
        ],
    )
    assert EmailEvent.objects.get().kind == "soft_bounce"
    assert not Suppression.objects.exists()


def test_the_webhook_needs_its_secret(delivered):
    assert post("postmark", postmark_bounce("bouncy@example.com"), auth="esp:wrong").status_code == 400
    assert post("postmark", postmark_bounce("bouncy@example.com"), auth="").status_code == 400
    assert not EmailEvent.objects.exists() and not Suppression.objects.exists()


def test_events_for_unknown_addresses_still_suppress(frozen):
    post("postmark", postmark_bounce("stranger@example.com"))
    assert Suppression.objects.get().reason == SuppressionReason.BOUNCED
    assert EmailEvent.objects.get().send is None
