"""Sending through a real SMTP server (aiosmtpd on 127.0.0.1): what arrives, and that nothing is
ever sent twice or lost, whatever fails."""

from __future__ import annotations

from datetime import timedelta

import pytest

from campaigns.email.models import EmailSend, SendStatus
from campaigns.email.sending import LOST_MID_SEND
from common.workqueue.models import Attempt, AttemptOutcome
from common.workqueue.run import run_due
from tests.campaigns.factories import fresh, make_contact, make_template, schedule

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_caller_checks")]


def run() -> dict:
    return run_due(types=["email_send"])["email_send"]


def test_a_due_send_arrives_with_its_headers_text_and_html(use_smtp, frozen):
    contact = make_contact("ada@example.com", first_name="Ada", properties={"favoriteColor": "teal"})
    send = schedule(contact, make_template(), key="loop:1:enrolment:1:step:1")
    assert run()["done"] == 1

    (received,) = use_smtp.messages
    assert received.rcpt_tos == ["ada@example.com"]
    assert received.header("Subject") == "Hello Ada"
    assert received.header("Message-ID") == fresh(send).message_id
    unsubscribe = received.header("List-Unsubscribe")
    assert unsubscribe.startswith("<http://127.0.0.1:8000/email/unsubscribe/")
    assert ">, <mailto:unsubscribe@localhost?subject=unsubscribe%20" in unsubscribe
    assert received.header("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
    html, text = received.part("text/html"), received.part("text/plain")
    assert "Your favourite colour is teal." in html
    assert 'style="color: #333333' in html  # the <style> was inlined for mail clients
    assert "/email/unsubscribe/" in html  # a visible unsubscribe link
    assert "Hi Ada," in text and "Your favourite colour is teal." in text and "Unsubscribe: http" in text

    send = fresh(send)
    assert (send.status, send.reason, send.sent_at, send.subject) == (SendStatus.SENT, "", frozen.now(), "Hello Ada")
    (attempt,) = Attempt.objects.filter(object_id=send.pk)
    assert (attempt.outcome, attempt.status_code) == (AttemptOutcome.OK, 250)
    assert attempt.response.startswith("250 2.0.0 Ok: queued as TEST")


def test_transactional_mail_carries_no_unsubscribe(use_smtp, frozen):
    schedule(make_contact(), make_template(transactional=True), purpose="notification" if False else "loop")
    run()
    (received,) = use_smtp.messages
    assert received.header("List-Unsubscribe") == ""
    assert "unsubscribe" not in received.part("text/html").lower()


def test_a_batch_goes_over_one_connection(use_smtp, frozen):
    template = make_template()
    for n in range(5):
        schedule(make_contact(f"p{n}@example.com"), template)
    assert run()["done"] == 5
    assert len(use_smtp.messages) == 5
    assert {m.session for m in use_smtp.messages} == {1}
    assert use_smtp.sessions == 1


def test_the_same_send_scheduled_twice_sends_once(use_smtp, frozen):
    contact, template = make_contact(), make_template()
    first = schedule(contact, template, key="loop:7:enrolment:3:step:1")
    second = schedule(contact, template, key="loop:7:enrolment:3:step:1")
    assert first.pk == second.pk
    assert EmailSend.objects.count() == 1
    run()
    run()
    assert len(use_smtp.messages) == 1


def test_a_temporary_refusal_is_retried_later_and_sent_once(use_smtp, frozen):
    send = schedule(make_contact("later@example.com"), make_template())
    use_smtp.refuse_next(451, "4.7.1 try again later")
    assert run()["retrying"] == 1
    send = fresh(send)
    assert send.status == SendStatus.SCHEDULED and send.send_started_at is None
    assert "451 4.7.1 try again later" in send.last_error
    assert use_smtp.messages == []

    frozen.advance(2 * 60)  # past the first backoff (about a minute)
    assert run()["done"] == 1
    assert len(use_smtp.to("later@example.com")) == 1
    frozen.advance(3600)
    run()
    assert len(use_smtp.to("later@example.com")) == 1
    outcomes = list(Attempt.objects.filter(object_id=send.pk).order_by("number").values_list("outcome", "status_code"))
    assert outcomes == [(AttemptOutcome.RETRY, 451), (AttemptOutcome.OK, 250)]


def test_a_permanent_refusal_fails_at_once_and_the_rest_of_the_batch_goes(use_smtp, frozen):
    template = make_template()
    bad = schedule(make_contact("nobody@example.com"), template)
    good = schedule(make_contact("somebody@example.com"), template)
    use_smtp.refuse_next(550, "5.1.1 no such user")
    counts = run()
    assert (counts["failed"], counts["done"]) == (1, 1)
    bad = fresh(bad)
    assert bad.status == SendStatus.FAILED
    assert bad.reason == "refused: 550 5.1.1 no such user"
    assert fresh(good).status == SendStatus.SENT
    assert [m.rcpt_tos for m in use_smtp.messages] == [["somebody@example.com"]]


def test_a_rejected_message_body_is_a_permanent_failure(use_smtp, frozen):
    send = schedule(make_contact(), make_template())
    use_smtp.reject_data_next(554, "5.7.1 message refused")
    run()
    assert fresh(send).reason == "rejected: 554 5.7.1 message refused"


def test_a_timeout_after_data_is_ambiguous_and_never_resent_by_itself(use_smtp, frozen, settings):
    settings.EMAIL_TIMEOUT = 0.5
    template = make_template()
    hung = schedule(make_contact("hung@example.com"), template)
    after = schedule(make_contact("after@example.com"), template)
    use_smtp.hang_data_next(2)
    counts = run()
    assert (counts["failed"], counts["done"]) == (1, 1)

    hung = fresh(hung)
    assert hung.status == SendStatus.FAILED
    assert hung.reason.startswith("ambiguous: the server's answer did not come")
    assert hung.next_attempt_at is None  # not retried automatically
    (attempt,) = Attempt.objects.filter(object_id=hung.pk)
    assert attempt.outcome == AttemptOutcome.FAILED
    # The connection was reopened for the rest of the batch.
    assert fresh(after).status == SendStatus.SENT
    frozen.advance(24 * 3600)
    run()
    assert len(use_smtp.to("hung@example.com")) == 1  # the server got it once; it was never sent again


def test_a_dropped_connection_before_the_message_is_retried_and_the_batch_goes_on(use_smtp, frozen):
    template = make_template()
    dropped = schedule(make_contact("dropped@example.com"), template)
    schedule(make_contact("next@example.com"), template)
    use_smtp.drop_next()
    counts = run()
    assert (counts["retrying"], counts["done"]) == (1, 1)
    assert "before the message was sent" in fresh(dropped).last_error
    frozen.advance(5 * 60)
    assert run()["done"] == 1
    assert len(use_smtp.to("dropped@example.com")) == 1


def test_a_server_that_is_down_loses_nothing(use_smtp, frozen):
    from aiosmtpd.controller import Controller

    from tests.campaigns.conftest import Handler

    send = schedule(make_contact("patient@example.com"), make_template())
    use_smtp.stop()
    assert run()["retrying"] == 1
    assert "could not connect" in fresh(send).last_error
    assert fresh(send).send_started_at is None
    handler = Handler()
    back = Controller(handler, hostname="127.0.0.1", port=use_smtp.port)
    back.start()
    try:
        frozen.advance(5 * 60)
        assert run()["done"] == 1
    finally:
        back.stop()
    assert [m.rcpt_tos for m in handler.messages] == [["patient@example.com"]]
    use_smtp.controller = Controller(Handler(), hostname="127.0.0.1", port=use_smtp.port)
    use_smtp.controller.start()  # for the fixture's own stop


def test_a_crash_between_the_claim_and_the_send_sends_it_once_after_the_lease(use_smtp, frozen):
    from common.workqueue.claim import claim
    from common.workqueue.registry import get_type

    send = schedule(make_contact("crash@example.com"), make_template())
    # A worker claims the send, then dies before sending (nothing more happens in it).
    held = claim(get_type("email_send"), limit=10, due_by=frozen.now(), now=frozen.now(), worker="dead:1:abc")
    assert [item.pk for item in held.items] == [send.pk]
    assert run()["done"] == 0  # leased: nobody else takes it
    frozen.advance(31)  # the 30-second lease runs out
    counts = run()
    assert (counts["done"], counts["recovered"]) == (1, 1)
    assert len(use_smtp.to("crash@example.com")) == 1
    lost, sent = Attempt.objects.filter(object_id=send.pk).order_by("number")
    assert lost.outcome == AttemptOutcome.AMBIGUOUS and sent.outcome == AttemptOutcome.OK


def test_a_send_lost_while_it_was_being_sent_is_failed_as_ambiguous_not_resent(use_smtp, frozen):
    """A worker marked the send and may have handed it to the server, then died before writing
    "sent": the next worker does not send it again; staff decide."""
    send = schedule(make_contact("maybe@example.com"), make_template())
    EmailSend.objects.filter(pk=send.pk).update(send_started_at=frozen.now(), claimed_by="dead:2:abc")
    frozen.advance(60)
    assert run()["failed"] == 1
    send = fresh(send)
    assert (send.status, send.reason) == (SendStatus.FAILED, LOST_MID_SEND)
    assert use_smtp.messages == []


def test_staff_retry_sends_a_failed_send_again_once(use_smtp, frozen):
    from campaigns.email.services import email_sends_retry

    failed = schedule(make_contact("again@example.com"), make_template())
    sent = schedule(make_contact("done@example.com"), make_template())
    use_smtp.refuse_next(550, "mailbox full")
    run()
    assert fresh(failed).status == SendStatus.FAILED
    result, left_alone = email_sends_retry(pks=[failed.pk, sent.pk])
    assert (result.changed, left_alone) == (1, 1)
    assert fresh(failed).status == SendStatus.SCHEDULED
    assert run()["done"] == 1
    assert [m.rcpt_tos for m in use_smtp.messages] == [["done@example.com"], ["again@example.com"]]
    assert fresh(failed).attempts == 2


def test_a_send_due_later_waits(use_smtp, frozen):
    send = schedule(make_contact(), make_template(), due_at=frozen.now() + timedelta(hours=1))
    assert run()["done"] == 0
    frozen.advance(3600)
    assert run()["done"] == 1
    assert fresh(send).sent_at == frozen.now()


def test_a_sender_name_outside_ascii_is_encoded(use_smtp, frozen, settings):
    settings.DEFAULT_FROM_EMAIL = "Café Zoë <hello@example.com>"
    schedule(make_contact("ascii@example.com"), make_template(subject="Grüße {{ contact.first_name }}"))
    run()
    (received,) = use_smtp.messages
    assert received.mail_from == "hello@example.com"
    assert received.header("From") == "Café Zoë <hello@example.com>"
    assert received.header("Subject") == "Grüße Ada"
    assert received.data.isascii()  # encoded words, not raw UTF-8, in the headers
