"""Webhooks and notifications against a real HTTP server on 127.0.0.1: signatures the
standardwebhooks verifier accepts, the Standard Webhooks retry schedule, 410 disabling a
subscription, replay, the SSRF guard; Slack and email notifications, at once or as a digest."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.test import Client
from standardwebhooks import Webhook

from campaigns.email.signals import email_bounced
from campaigns.notifications.models import NotificationRule
from campaigns.surveys.models import SurveyDispatch
from campaigns.webhooks.models import Delivery, WebhookSubscription
from campaigns.webhooks.netguard import UnsafeURL, check_url
from campaigns.webhooks.services import deliveries_replay
from common.models import Attempt
from tests.campaigns.surveys.conftest import make_campaign, outbox, run_work, score_links

pytestmark = pytest.mark.django_db


@pytest.fixture
def answered(inbound, frozen):
    """Survey `user_id` and answer `score` (with `comment`) through the page."""

    def make(user_id: str = "u1", score: int = 9, comment: str = "", campaign=None):
        campaign = campaign or make_campaign()
        contact = inbound.identify(user_id)
        inbound.track(user_id=user_id)
        mail.outbox.clear()
        run_work("survey_dispatch", "email_send", "surveys")
        [message] = [m for m in outbox() if m.to == [contact.email]]
        link = urlsplit(score_links(message.alternatives[0][0])[score])
        Client().post(link.path, {"score": str(score), "comment": comment})
        return campaign, contact

    return make


def subscribe(url: str, *events: str) -> WebhookSubscription:
    return WebhookSubscription.objects.create(url=url, events=list(events))


def test_a_response_is_delivered_signed_and_the_verifier_accepts_it(receiver, answered):
    subscription = subscribe(f"{receiver.url}/hooks", "response.created", "response.updated")
    subscribe(f"{receiver.url}/other", "survey.bounced")
    campaign, contact = answered(score=9, comment="Great")
    run_work("webhook")
    [call] = receiver.received()
    assert call.path == "/hooks"
    payload = Webhook(subscription.secret).verify(call.body, call.headers)
    assert payload["type"] == "response.created"
    assert payload["timestamp"].endswith("Z")
    data = payload["data"]
    assert (data["score"], data["category"], data["comment"], data["email"]) == (9, "promoter", "Great", contact.email)
    assert (data["campaign"], data["metric"], data["contact"]) == (campaign.pk, "nps", contact.pk)
    assert call.headers["webhook-id"].startswith("msg_")
    assert call.headers["webhook-signature"].startswith("v1,")
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.status_code) == ("delivered", 200)
    # A tampered body or another secret does not verify.
    from standardwebhooks.webhooks import WebhookVerificationError

    with pytest.raises(WebhookVerificationError):
        Webhook(subscription.secret).verify(call.body.replace(b"Great", b"Bad"), call.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=").verify(call.body, call.headers)


def test_failures_retry_on_the_standard_webhooks_schedule_and_410_disables(receiver, frozen):
    from campaigns.webhooks.services import webhook_events_emit

    subscription = subscribe(f"{receiver.url}/hooks", "contact.unsubscribed")
    webhook_events_emit(events=[("contact.unsubscribed", {"contact": 1, "email": "a@example.com", "reason": "x"})])
    delivery = Delivery.objects.get()
    expected = [5, 300, 1800, 7200, 18000, 36000]
    for wait in expected:
        receiver.answer_next(503)
        run_work("webhook")
        delivery.refresh_from_db()
        assert delivery.status == "pending" and delivery.status_code == 503
        delay = (delivery.next_attempt_at - frozen.now()).total_seconds()
        assert wait * 0.9 <= delay <= wait * 1.1, (wait, delay)
        frozen.move_to(delivery.next_attempt_at)
    receiver.answer_next(410)
    run_work("webhook")
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.next_attempt_at is None
    subscription.refresh_from_db()
    assert subscription.enabled is False and "410" in subscription.disabled_reason
    attempts = list(Attempt.objects.filter(object_id=delivery.pk).order_by("number"))
    assert [a.status_code for a in attempts] == [503] * 6 + [410]
    assert len(receiver.received()) == 7
    # All seven calls carried the same webhook-id, each signed at its own time.
    assert len({call.headers["webhook-id"] for call in receiver.received()}) == 1
    # A disabled subscription gets nothing new.
    webhook_events_emit(events=[("contact.unsubscribed", {"contact": 2, "email": "b@example.com", "reason": "x"})])
    assert Delivery.objects.count() == 1


def test_a_429_waits_for_retry_after(receiver, frozen):
    from campaigns.webhooks.services import webhook_events_emit

    subscribe(f"{receiver.url}/hooks", "contact.unsubscribed")
    webhook_events_emit(events=[("contact.unsubscribed", {"contact": 1})])
    receiver.answer_next(429, {"Retry-After": "120"})
    run_work("webhook")
    delivery = Delivery.objects.get()
    assert (delivery.next_attempt_at - frozen.now()).total_seconds() == 120


def test_replay_sends_the_same_message_again(receiver, frozen):
    from campaigns.webhooks.services import webhook_events_emit

    subscription = subscribe(f"{receiver.url}/hooks", "contact.unsubscribed")
    webhook_events_emit(events=[("contact.unsubscribed", {"contact": 1})])
    run_work("webhook")
    delivery = Delivery.objects.get()
    frozen.advance(600)
    result = deliveries_replay(pks=[delivery.pk])
    assert result.changed == 1
    run_work("webhook")
    first, second = receiver.received()
    assert first.body == second.body and first.headers["webhook-id"] == second.headers["webhook-id"]
    assert int(second.headers["webhook-timestamp"]) == int(first.headers["webhook-timestamp"]) + 600
    Webhook(subscription.secret).verify(second.body, second.headers)
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.attempts == 2


def test_private_addresses_are_refused_unless_allowed(receiver, settings, staff):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    for url in (
        receiver.url,
        "http://localhost:9/x",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest",
        "http://[::1]/",
    ):
        with pytest.raises(UnsafeURL):
            check_url(url)
        answer = staff.post(
            "/api/v1/webhooks/", {"url": url, "events": ["response.created"]}, content_type="application/json"
        )
        assert answer.status_code == 400 and "url" in answer.json(), url
    for url in ("ftp://example.com/", "http://user:pw@example.com/"):
        with pytest.raises(UnsafeURL):
            check_url(url, resolve=False)
    # A subscription saved while allowed is refused at delivery once the setting is off.
    from campaigns.webhooks.services import webhook_events_emit

    subscribe(f"{receiver.url}/hooks", "contact.unsubscribed")
    webhook_events_emit(events=[("contact.unsubscribed", {"contact": 1})])
    run_work("webhook")
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and "private or local address" in delivery.last_error
    assert receiver.received() == []


def test_bounce_and_unsubscribe_events(receiver, answered):
    subscription = subscribe(f"{receiver.url}/hooks", "survey.bounced", "contact.unsubscribed")
    campaign, contact = answered()
    from campaigns.email.models import EmailSend

    send = EmailSend.objects.get(purpose="survey")
    email_bounced.send(sender=EmailSend, send=send, contact=contact, email=contact.email, hard=True)
    from contacts.services import contact_unsubscribe

    contact_unsubscribe(contacts=[contact], reason="unsubscribed by email (link)")
    run_work("webhook")
    payloads = [Webhook(subscription.secret).verify(c.body, c.headers) for c in receiver.received()]
    by_type = {p["type"]: p["data"] for p in payloads}
    assert by_type["survey.bounced"]["survey_id"] == SurveyDispatch.objects.get().pk
    assert by_type["survey.bounced"]["hard"] is True
    assert by_type["contact.unsubscribed"] == {
        "contact": contact.pk,
        "email": contact.email,
        "reason": "unsubscribed by email (link)",
    }


def test_slack_and_email_notifications_at_once(receiver, answered):
    slack = NotificationRule.objects.create(
        name="CX channel", channel="slack", slack_url=f"{receiver.url}/slack", events=["detractor", "comment"]
    )
    NotificationRule.objects.create(
        name="Team", channel="email", emails="cx@acme.example, lead@acme.example", events=["new_response"]
    )
    answered("sad", score=2, comment="Late again")
    answered("happy", score=10)
    run_work("email_send", "webhook")
    [call] = receiver.received("/slack")
    text = call.json["text"]
    assert "detractor (2)" in text and "Late again" in text
    assert "webhook-signature" not in call.headers
    staff_mail = [m for m in mail.outbox if m.to[0].endswith("@acme.example")]
    assert sorted(m.to[0] for m in staff_mail) == ["cx@acme.example"] * 2 + ["lead@acme.example"] * 2
    assert any("answered 10" in m.subject for m in staff_mail)
    assert Delivery.objects.get().notification == slack


def test_a_daily_digest_collects_and_goes_once_a_day(receiver, answered, frozen):
    NotificationRule.objects.create(
        name="Daily", channel="slack", slack_url=f"{receiver.url}/digest", events=["new_response"], frequency="daily"
    )
    answered("a", score=9)
    answered("b", score=3)
    run_work()
    assert receiver.received("/digest") == []
    frozen.advance(86400 + 1)
    run_work()
    run_work("webhook")
    [call] = receiver.received("/digest")
    assert "Daily survey digest: 2 events" in call.json["text"]
    assert "answered 9" in call.json["text"] and "answered 3" in call.json["text"]
    frozen.advance(3600)
    run_work()
    assert len(receiver.received("/digest")) == 1


def test_the_api_makes_a_secret_and_checks_the_fields(staff):
    answer = staff.post(
        "/api/v1/webhooks/",
        {"url": "https://hooks.example.com/in", "events": ["response.created"]},
        content_type="application/json",
    )
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert set(body) == {"id", "url", "secret", "events"}
    assert body["secret"].startswith("whsec_")
    Webhook(body["secret"])  # the verifier takes it
    for bad, field in (
        ({"url": "https://h.example.com", "events": ["nope"]}, "events"),
        ({"url": "https://h.example.com", "events": []}, "events"),
        ({"url": "not a url", "events": ["response.created"]}, "url"),
        ({"url": "https://h.example.com", "events": ["response.created"], "secret": "abc"}, "secret"),
        ({"url": "https://h.example.com", "events": ["response.created"], "secret": "whsec_***"}, "secret"),
    ):
        answer = staff.post("/api/v1/webhooks/", bad, content_type="application/json")
        assert answer.status_code == 400 and field in answer.json(), (bad, answer.content)
    patched = staff.patch(
        f"/api/v1/webhooks/{body['id']}/", json.dumps({"events": ["survey.bounced"]}), content_type="application/json"
    )
    assert patched.json()["events"] == ["survey.bounced"]
    assert staff.delete(f"/api/v1/webhooks/{body['id']}/").status_code == 204
