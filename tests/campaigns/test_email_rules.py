"""Who gets what, decided when a send is due: each skip recorded with its reason, and what is
skipped never reaches the server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail

from campaigns.email.models import SendStatus
from campaigns.email.rules import register_send_check, unregister_send_check
from campaigns.email.services import email_sends_cancel
from common.workqueue.models import Attempt, AttemptOutcome
from common.workqueue.run import run_due
from contacts.services import contact_erase, contact_resubscribe, contact_unsubscribe, suppressions_add
from tests.campaigns.factories import fresh, make_contact, make_template, schedule

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_caller_checks")]


def run() -> dict:
    return run_due(types=["email_send"])["email_send"]


def outcome(send) -> tuple[str, str]:
    send = fresh(send)
    return send.status, send.reason


def sent_to() -> list[str]:
    return [address for message in mail.outbox for address in message.to]


@pytest.fixture
def marketing():
    return make_template(name="marketing")


@pytest.fixture
def transactional():
    return make_template(name="receipt", transactional=True)


def test_unsubscribed_contacts_get_transactional_mail_but_no_marketing(frozen, marketing, transactional):
    contact = make_contact("gone@example.com")
    contact_unsubscribe(contacts=[contact], reason="clicked unsubscribe")
    news = schedule(contact, marketing, purpose="loop")
    survey = schedule(contact, marketing, purpose="survey")
    receipt = schedule(contact, transactional, purpose="loop")
    run()
    assert outcome(news) == (SendStatus.SKIPPED, "unsubscribed")
    assert outcome(survey) == (SendStatus.SKIPPED, "unsubscribed")
    assert outcome(receipt)[0] == SendStatus.SENT
    assert sent_to() == ["gone@example.com"]
    (attempt,) = Attempt.objects.filter(object_id=news.pk)
    assert (attempt.outcome, attempt.error) == (AttemptOutcome.SKIPPED, "unsubscribed")


def test_a_contact_who_opts_in_again_gets_marketing_again(frozen, marketing):
    contact = make_contact()
    contact_unsubscribe(contacts=[contact])
    contact_resubscribe(contact=contact, reason="opted in")
    send = schedule(contact, marketing)
    run()
    assert outcome(send)[0] == SendStatus.SENT


@pytest.mark.parametrize(("reason", "expected"), [("bounced", "bounced"), ("complained", "complained")])
def test_bounced_and_complained_addresses_get_nothing_not_even_transactional(
    frozen, marketing, transactional, reason, expected
):
    contact = make_contact("dead@example.com")
    suppressions_add(emails=["DEAD@example.com"], reason=reason)
    news, receipt = schedule(contact, marketing), schedule(contact, transactional)
    run()
    assert outcome(news) == (SendStatus.SKIPPED, expected)
    assert outcome(receipt) == (SendStatus.SKIPPED, expected)
    assert mail.outbox == []


def test_suppressed_contacts_get_nothing(frozen, marketing, transactional):
    by_email = make_contact("listed@example.com")
    by_user_id = make_contact("other@example.com", user_id="u-listed")
    suppressions_add(emails=["listed@example.com"])
    suppressions_add(user_ids=["u-listed"])
    sends = [schedule(by_email, marketing), schedule(by_user_id, marketing), schedule(by_email, transactional)]
    run()
    assert {outcome(send) for send in sends} == {(SendStatus.SKIPPED, "suppressed: uploaded suppression list")}
    assert mail.outbox == []


def test_an_erased_contact_gets_nothing_and_the_send_forgets_the_address(frozen, marketing):
    contact = make_contact("erase.me@example.com")
    send = schedule(contact, marketing, due_at=frozen.now() + timedelta(hours=1))
    contact_erase(contact=contact, requested_by="test")
    send = fresh(send)
    assert (send.status, send.reason, send.to, send.context) == (SendStatus.SKIPPED, "contact erased", "(erased)", {})
    frozen.advance(7200)
    run()
    assert mail.outbox == []


def test_a_contact_erased_while_its_send_waits_in_the_queue_is_skipped(frozen, marketing):
    contact = make_contact()
    send = schedule(contact, marketing)
    type(contact).objects.filter(pk=contact.pk).delete()  # the row is gone; its send points at nobody
    run()
    assert outcome(send) == (SendStatus.SKIPPED, "contact erased")


def test_the_callers_checks_skip_with_their_reason_in_one_call_per_batch(frozen, marketing):
    calls = []

    def check(sends):
        calls.append(sorted(s.pk for s in sends))
        return {s.pk: "exited" for s in sends if s.context.get("properties", {}).get("exit")}

    register_send_check("loop", check)
    try:
        stays = schedule(make_contact(), marketing, event={"name": "x", "properties": {}})
        leaves = schedule(make_contact(), marketing, event={"name": "x", "properties": {"exit": True}})
        other = schedule(make_contact(), marketing, purpose="survey")
        unsubscribed = make_contact()
        contact_unsubscribe(contacts=[unsubscribed])
        skipped_first = schedule(unsubscribed, marketing)
        run()
    finally:
        unregister_send_check("loop", check)
    assert calls == [sorted([stays.pk, leaves.pk])]  # one call, and only sends still going after the contact rules
    assert outcome(leaves) == (SendStatus.SKIPPED, "exited")
    assert outcome(stays)[0] == outcome(other)[0] == SendStatus.SENT
    assert outcome(skipped_first) == (SendStatus.SKIPPED, "unsubscribed")


def test_the_frequency_cap_counts_marketing_across_loops_reminders_and_surveys(
    frozen, settings, marketing, transactional
):
    settings.EMAIL_DAILY_CAP_PER_CONTACT = 2
    contact = make_contact("busy@example.com")
    first = schedule(contact, marketing, purpose="loop")
    second = schedule(contact, marketing, purpose="reminder")
    third = schedule(contact, marketing, purpose="survey")
    receipt = schedule(contact, transactional, purpose="loop")
    run()
    assert [outcome(s)[0] for s in (first, second, receipt)] == [SendStatus.SENT] * 3
    assert outcome(third) == (SendStatus.SKIPPED, "frequency cap: 2 marketing emails a day")

    frozen.advance(12 * 3600)  # still within 24 hours of the first two
    later = schedule(contact, marketing, purpose="loop")
    run()
    assert outcome(later)[0] == SendStatus.SKIPPED
    frozen.advance(12 * 3600 + 1)
    next_day = schedule(contact, marketing, purpose="loop")
    run()
    assert outcome(next_day)[0] == SendStatus.SENT
    other = make_contact()
    assert outcome(schedule(other, marketing))[0] == SendStatus.SCHEDULED


def test_no_cap_by_default(frozen, marketing):
    contact = make_contact()
    sends = [schedule(contact, marketing) for _ in range(5)]
    run()
    assert {outcome(s)[0] for s in sends} == {SendStatus.SENT}


def test_after_an_outage_a_long_overdue_send_follows_its_late_rule(frozen, marketing):
    due = frozen.now()
    skip = schedule(make_contact(), marketing, due_at=due, late_after=timedelta(hours=1), late_policy="skip")
    late = schedule(make_contact(), marketing, due_at=due, late_after=60, late_policy="send")
    never_late = schedule(make_contact(), marketing, due_at=due)
    in_time = schedule(make_contact(), marketing, due_at=due + timedelta(hours=2.5), late_after=60, late_policy="skip")
    frozen.advance(3 * 3600 + 5 * 60)  # the workers were down for three hours
    run()
    assert outcome(skip) == (SendStatus.SKIPPED, "late: 3 h 5 min after its due time (late sends are skipped)")
    assert outcome(late) == (SendStatus.SENT, "sent late: 3 h 5 min after its due time")
    assert outcome(never_late) == (SendStatus.SENT, "")
    assert outcome(in_time) == (SendStatus.SENT, "")


def test_a_template_error_is_reported_on_the_send_and_nothing_is_sent(frozen):
    template = make_template(html="<p>{{ event.properties.when|date:'Y' }}</p>")
    template.html = "<p>{% widthratio 1 0 contact.nope %}</p>{{ contact.email|truncatechars:'x' }}"
    template.save()  # written around the checks, as a template broken by an upgrade would be
    send = schedule(make_contact(), template)
    good = schedule(make_contact(), make_template())
    counts = run()
    assert (counts["failed"], counts["done"]) == (1, 1)
    status, reason = outcome(send)
    assert status == SendStatus.SKIPPED
    assert reason.startswith("template error: html line 1: ")
    assert fresh(send).next_attempt_at is None  # not retried until staff fix it and retry
    assert [m.to for m in mail.outbox] == [[fresh(good).to]]


def test_cancelled_sends_are_skipped_with_the_callers_reason(frozen, marketing):
    send = schedule(make_contact(), marketing, key="loop:1:enrolment:9:step:2", due_at=frozen.now() + timedelta(1))
    done = schedule(make_contact(), marketing, key="loop:1:enrolment:9:step:1")
    run()
    assert email_sends_cancel(keys=["loop:1:enrolment:9:step:2", "loop:1:enrolment:9:step:1"], reason="exited") == 1
    assert outcome(send) == (SendStatus.SKIPPED, "exited")
    assert fresh(send).next_attempt_at is None
    assert outcome(done)[0] == SendStatus.SENT


def test_staff_mail_needs_no_contact_but_a_bounced_staff_address_gets_nothing(frozen, marketing):
    note = schedule(None, marketing, purpose="notification", to="team@example.com")
    suppressions_add(emails=["old-team@example.com"], reason="bounced")
    dead = schedule(None, marketing, purpose="notification", to="old-team@example.com")
    run()
    assert outcome(note)[0] == SendStatus.SENT
    assert outcome(dead) == (SendStatus.SKIPPED, "bounced")
    assert mail.outbox[0].extra_headers.get("List-Unsubscribe") is None


def test_a_send_goes_to_the_contacts_current_address(frozen, marketing):
    contact = make_contact("old@example.com")
    send = schedule(contact, marketing)
    type(contact).objects.filter(pk=contact.pk).update(email="new@example.com")
    run()
    assert sent_to() == ["new@example.com"]
    assert fresh(send).to == "new@example.com"


def test_a_merge_moves_the_sends_to_the_surviving_contact(frozen, marketing, settings):
    from contacts.services import contact_merge

    settings.EMAIL_DAILY_CAP_PER_CONTACT = 1
    source, target = make_contact("old@example.com"), make_contact("new@example.com")
    first = schedule(source, marketing)
    run()
    contact_merge(source=source, target=target)
    assert fresh(first).contact_id == target.pk
    second = schedule(target, marketing)
    run()
    assert outcome(second)[0] == SendStatus.SKIPPED  # the merged history counts toward the cap
