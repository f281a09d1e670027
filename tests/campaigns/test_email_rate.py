"""EMAIL_RATE_LIMIT: at most N sends a window, across workers; a send that does not fit keeps a
place in a later window instead of being turned away again and again."""

from __future__ import annotations

from collections import Counter

import pytest
from django.core.exceptions import ImproperlyConfigured

from campaigns.email.models import EmailRateWindow, EmailSend, SendStatus
from campaigns.email.rate import parse_rate
from common.workqueue.models import Attempt, AttemptOutcome
from common.workqueue.run import run_due
from tests.campaigns.factories import make_contact, make_template, schedule

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_caller_checks")]


def run() -> dict:
    return run_due(types=["email_send"])["email_send"]


def test_rates_are_read_loudly():
    assert parse_rate("") is None
    assert parse_rate("300/minute") == (300, 60)
    assert parse_rate("10000 / hour") == (10000, 3600)
    assert parse_rate("50/10seconds") == (50, 10)
    for bad in ("300", "0/minute", "ten/minute", "5/fortnight"):
        with pytest.raises(ImproperlyConfigured):
            parse_rate(bad)


def test_a_backlog_goes_out_at_the_rate_each_send_once(use_smtp, frozen, settings):
    settings.EMAIL_RATE_LIMIT = "3/minute"
    template = make_template()
    sends = [schedule(make_contact(f"r{n}@example.com"), template) for n in range(7)]

    counts = run()
    assert (counts["done"], counts["retrying"]) == (3, 4)
    assert len(use_smtp.messages) == 3
    waiting = EmailSend.objects.filter(status=SendStatus.SCHEDULED).order_by("pk")
    assert Counter(send.rate_window.strftime("%H:%M") for send in waiting) == {"09:01": 3, "09:02": 1}
    assert all("rate limited" in send.last_error for send in waiting)

    frozen.advance(30)  # still the first minute: nothing more
    assert run()["done"] == 0
    frozen.advance(30)
    assert run()["done"] == 3
    assert len(use_smtp.messages) == 6
    frozen.advance(60)
    assert run()["done"] == 1
    assert sorted(m.rcpt_tos[0] for m in use_smtp.messages) == sorted(f"r{n}@example.com" for n in range(7))
    # Each waiting send was turned away once, then sent in its window.
    for send in sends:
        outcomes = list(Attempt.objects.filter(object_id=send.pk).order_by("number").values_list("outcome", flat=True))
        assert outcomes in ([AttemptOutcome.OK], [AttemptOutcome.RETRY, AttemptOutcome.OK])
    assert EmailRateWindow.objects.exclude(used=0).filter(used__gt=3).count() == 0


def test_skipped_and_broken_sends_take_no_place(use_smtp, frozen, settings):
    from contacts.services import contact_unsubscribe

    settings.EMAIL_RATE_LIMIT = "2/minute"
    template = make_template()
    gone = make_contact()
    contact_unsubscribe(contacts=[gone])
    schedule(gone, template)
    ok = [schedule(make_contact(), template) for _ in range(2)]
    assert run()["done"] == 2
    assert {s.status for s in EmailSend.objects.filter(pk__in=[s.pk for s in ok])} == {SendStatus.SENT}


def test_no_limit_by_default(use_smtp, frozen):
    template = make_template()
    for _ in range(12):
        schedule(make_contact(), template)
    assert run()["done"] == 12
    assert not EmailRateWindow.objects.exists()
