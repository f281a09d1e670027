"""RFC 8058 one-click unsubscribe: a POST unsubscribes without a login and answers 200; a GET
(a person, or a link scanner) only shows the confirmation page."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from campaigns.email.models import SendStatus
from campaigns.email.unsubscribe import mailto_unsubscribe, read_token, unsubscribe_token
from common.workqueue.run import run_due
from contacts.models import Contact, Suppression, SuppressionReason
from contacts.signals import contacts_unsubscribed
from tests.campaigns.factories import fresh, make_contact, make_template, schedule

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_caller_checks")]


@pytest.fixture
def sent(use_smtp, frozen):
    """A marketing email that went out, and the one-click URL from its List-Unsubscribe header."""
    contact = make_contact("reader@example.com")
    send = schedule(contact, make_template())
    run_due(types=["email_send"])
    (message,) = use_smtp.messages
    url = re.search(r"<(https?://[^>]+)>", message.header("List-Unsubscribe")).group(1)
    assert url in message.part("text/html")  # the visible link is the same URL
    return contact, fresh(send), url.removeprefix("http://127.0.0.1:8000")


def test_a_one_click_post_unsubscribes_without_a_login(sent):
    contact, send, path = sent
    heard = []

    def receiver(sender, contact_ids, reason, **kwargs):
        heard.append((contact_ids, reason))

    contacts_unsubscribed.connect(receiver)
    try:
        client = Client(enforce_csrf_checks=True)  # as a mail provider posts: no cookie, no CSRF token
        response = client.post(path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    finally:
        contacts_unsubscribed.disconnect(receiver)
    assert response.status_code == 200  # not a redirect
    assert "You are unsubscribed" in response.content.decode()
    contact.refresh_from_db()
    assert contact.subscribed is False
    assert contact.subscription_reason == f"unsubscribed by email (one-click, send {send.pk})"
    assert Suppression.objects.get(reason=SuppressionReason.UNSUBSCRIBED).note.startswith("unsubscribed by email")
    assert heard == [([contact.pk], contact.subscription_reason)]  # the signal the Segment track is sent from
    assert fresh(send).unsubscribed_at is not None
    # Again: still 200, nothing more happens.
    assert Client().post(path, {"List-Unsubscribe": "One-Click"}).status_code == 200


def test_a_get_only_shows_the_confirmation_page(sent):
    contact, _, path = sent
    for _ in range(3):  # a link scanner following the link, several times
        response = Client().get(path)
        assert response.status_code == 200
        assert "Unsubscribe?" in response.content.decode()
    assert Client().head(path).status_code == 200
    contact.refresh_from_db()
    assert contact.subscribed is True
    # The page's button posts back to the same URL.
    assert Client().post(path, {"confirm": "yes"}).status_code == 200
    contact.refresh_from_db()
    assert contact.subscribed is False
    assert "(link, send" in contact.subscription_reason


def test_after_unsubscribing_the_next_marketing_email_is_skipped(sent, use_smtp):
    contact, _, path = sent
    Client().post(path, {"List-Unsubscribe": "One-Click"})
    later = schedule(contact, make_template())
    run_due(types=["email_send"])
    assert (fresh(later).status, fresh(later).reason) == (SendStatus.SKIPPED, "unsubscribed")
    assert len(use_smtp.messages) == 1


def test_tokens_are_signed_and_a_forged_one_changes_nothing():
    contact = make_contact()
    token = unsubscribe_token(contact_id=contact.pk, send_id=7)
    assert read_token(token) == (contact.pk, 7)
    forged = f"{contact.pk}.7:" + "A" * 43
    other = token.replace(f"{contact.pk}.7", f"{contact.pk + 1}.7")
    for bad in (forged, other, "1.1", "nonsense"):
        assert read_token(bad) is None
        assert Client().post(f"/email/unsubscribe/{bad}/").status_code == 404
        assert Client().get(f"/email/unsubscribe/{bad}/").status_code == 404
    assert Contact.objects.get(pk=contact.pk).subscribed is True


def test_the_mailto_unsubscribe_carries_the_token_in_its_subject():
    contact = make_contact()
    token = unsubscribe_token(contact_id=contact.pk, send_id=3)
    assert mailto_unsubscribe(subject=f"unsubscribe {token}") == contact
    contact.refresh_from_db()
    assert contact.subscribed is False and "mailto" in contact.subscription_reason
