"""Steps when they come due, with a controllable clock: delays, exits, re-entry, unsubscribes and
list membership checked at due time, and each skip's reason."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail

from campaigns.loops.models import Enrolment, EnrolmentStatus, Reentry
from campaigns.loops.stats import loop_totals
from contacts.services import contact_unsubscribe
from tests.campaigns.loops.conftest import join_list, make_loop, run_sends, sends

pytestmark = pytest.mark.django_db


def subjects() -> list[str]:
    return [m.subject for m in mail.outbox]


def test_each_step_waits_its_delay_after_the_one_before(frozen, template, identify, track):
    loop = make_loop(
        steps=[
            (30, template("One", subject="one")),
            (1440, template("Two", subject="two")),
            (120, template("Three", subject="three")),
        ]
    )
    identify("u1")
    start = frozen.now()
    track(user_id="u1", properties={"plan": "pro"})

    run_sends()
    assert subjects() == []  # step 1 is due 30 minutes after the event
    frozen.advance(minutes=29)
    run_sends()
    assert subjects() == []
    frozen.advance(minutes=1)
    run_sends()
    assert subjects() == ["one"]
    assert "Plan pro for u1@example.com" in mail.outbox[0].body

    step2 = sends(key__endswith=":step:2")[0]
    assert step2.due_at == start + timedelta(minutes=30) + timedelta(days=1)
    frozen.advance(hours=23, minutes=59)
    run_sends()
    assert subjects() == ["one"]
    frozen.advance(minutes=1)
    run_sends()
    assert subjects() == ["one", "two"]
    frozen.advance(hours=2)
    run_sends()
    assert subjects() == ["one", "two", "three"]
    enrolment = Enrolment.objects.get()
    assert enrolment.status == EnrolmentStatus.COMPLETED and enrolment.emails_sent == 3
    assert loop_totals([loop.pk])[loop.pk] == {"started": 1, "emailed": 3, "exited": 0, "unsubscribed": 0}


def test_an_exit_event_stops_the_remaining_steps(frozen, template, identify, track):
    loop = make_loop(
        steps=[(0, template("One", subject="one")), (60, template("Two", subject="two"))], exits=["Order Completed"]
    )
    identify("u1")
    track(user_id="u1")
    run_sends()
    assert subjects() == ["one"]
    frozen.advance(minutes=10)
    track("Order Completed", user_id="u1")

    enrolment = Enrolment.objects.get()
    assert enrolment.status == EnrolmentStatus.EXITED
    assert "Order Completed" in enrolment.reason
    [step2] = sends(key__endswith=":step:2")
    assert step2.status == "skipped" and step2.reason.startswith("exited")
    frozen.advance(hours=2)
    run_sends()
    assert subjects() == ["one"]
    assert loop_totals([loop.pk])[loop.pk]["exited"] == 1


def test_an_exit_before_the_first_step_means_no_email(frozen, template, identify, track):
    make_loop(steps=[(60, template())], exits=["Order Completed"])
    identify("u1")
    track(user_id="u1")
    frozen.advance(minutes=5)
    track("Order Completed", user_id="u1")
    frozen.advance(hours=2)
    run_sends()
    assert subjects() == []
    [step1] = sends()
    assert step1.status == "skipped" and step1.reason.startswith("exited")


def test_an_exit_event_older_than_the_trigger_does_not_exit(frozen, template, identify, track):
    make_loop(steps=[(60, template())], exits=["Order Completed"])
    identify("u1")
    track("Order Completed", user_id="u1", timestamp=frozen.now() - timedelta(hours=1))
    track(user_id="u1")
    assert Enrolment.objects.get().status == EnrolmentStatus.ACTIVE


@pytest.mark.parametrize(
    ("reentry", "days", "gap", "expected"),
    [
        (Reentry.ONCE, None, timedelta(days=30), 1),
        (Reentry.EVERY_TIME, None, timedelta(minutes=1), 2),
        (Reentry.AFTER_DAYS, 7, timedelta(days=6, hours=23), 1),
        (Reentry.AFTER_DAYS, 7, timedelta(days=7), 2),
    ],
)
def test_reentry(frozen, template, identify, track, reentry, days, gap, expected):
    make_loop(steps=[(0, template())], reentry=reentry, reentry_days=days)
    identify("u1")
    track(user_id="u1")
    frozen.advance(seconds=gap.total_seconds())
    track(user_id="u1")
    assert Enrolment.objects.count() == expected


def test_reentry_counts_within_one_chunk(frozen, template, identify, segment, drain):
    make_loop(steps=[(0, template())], reentry=Reentry.ONCE)
    identify("u1")
    client, _ = segment
    batch = [
        {
            "type": "track",
            "userId": "u1",
            "event": "User Registered",
            "messageId": f"m{n}",
            "timestamp": frozen.now().isoformat(),
        }
        for n in range(3)
    ]
    assert client.post("/v1/batch", {"batch": batch}).status_code == 200
    drain()
    assert Enrolment.objects.count() == 1


def test_a_contact_who_unsubscribed_gets_no_further_step(frozen, template, identify, track):
    loop = make_loop(steps=[(0, template("One", subject="one")), (60, template("Two", subject="two"))])
    ada = identify("u1")
    track(user_id="u1")
    run_sends()
    contact_unsubscribe(contacts=[ada], reason="unsubscribed by link")
    frozen.advance(hours=2)
    run_sends()
    assert subjects() == ["one"]
    enrolment = Enrolment.objects.get()
    assert enrolment.status == EnrolmentStatus.UNSUBSCRIBED
    [step2] = sends(key__endswith=":step:2")
    assert step2.status == "skipped" and "unsubscribed" in step2.reason
    assert loop_totals([loop.pk])[loop.pk]["unsubscribed"] == 1


def test_an_unsubscribe_by_segment_identify_is_seen_at_due_time(frozen, template, identify, track):
    loop = make_loop(steps=[(0, template("One", subject="one")), (60, template("Two", subject="two"))])
    identify("u1")
    track(user_id="u1")
    run_sends()
    identify("u1", subscribed=False)
    frozen.advance(hours=2)
    run_sends()
    assert subjects() == ["one"]
    [step2] = sends(key__endswith=":step:2")
    assert step2.status == "skipped" and step2.reason == "unsubscribed"
    frozen.advance(minutes=10)
    run_sends()  # the loops' settling sees the skipped step
    enrolment = Enrolment.objects.get()
    assert enrolment.status == EnrolmentStatus.UNSUBSCRIBED
    assert loop_totals([loop.pk])[loop.pk]["unsubscribed"] == 1


def test_list_membership_is_checked_when_each_step_is_due(frozen, template, identify, track):
    ada = identify("u1")
    news = join_list(ada)
    make_loop(steps=[(0, template("One", subject="one")), (60, template("Two", subject="two"))], mailing_list=news)
    track(user_id="u1")
    run_sends()
    assert subjects() == ["one"]
    join_list(ada, subscribed=False)
    frozen.advance(hours=2)
    run_sends()
    assert subjects() == ["one"]
    [step2] = sends(key__endswith=":step:2")
    assert (step2.status, step2.reason) == ("skipped", "unsubscribed from the list")
    assert Enrolment.objects.get().status == EnrolmentStatus.UNSUBSCRIBED


def test_a_contact_removed_from_the_list_is_skipped_as_not_on_the_list(frozen, template, identify, track):
    ada = identify("u1")
    news = join_list(ada)
    make_loop(steps=[(60, template())], mailing_list=news)
    track(user_id="u1")
    ada.memberships.all().delete()
    frozen.advance(hours=2)
    run_sends()
    assert subjects() == []
    [step1] = sends()
    assert (step1.status, step1.reason) == ("skipped", "not on the list")
    assert Enrolment.objects.get().status == EnrolmentStatus.EXITED


def test_a_disabled_loop_skips_its_due_steps(frozen, template, identify, track):
    loop = make_loop(steps=[(60, template())])
    identify("u1")
    track(user_id="u1")
    loop.enabled = False
    loop.save()
    frozen.advance(hours=2)
    run_sends()
    [step1] = sends()
    assert (step1.status, step1.reason) == ("skipped", "loop disabled")


def test_a_late_step_follows_the_loops_late_rule(frozen, template, identify, track):
    make_loop(
        steps=[(0, template("One", subject="one")), (60, template("Two", subject="two"))],
        late_policy="skip",
        late_after_minutes=30,
    )
    identify("u1")
    track(user_id="u1", timestamp=frozen.now() - timedelta(hours=3))
    run_sends()
    [step1] = sends(key__endswith=":step:1")
    assert step1.status == "skipped" and step1.reason.startswith("late")
    # The loop goes on: the next step counts from when the skipped one came due.
    frozen.advance(hours=1)
    run_sends()
    assert subjects() == ["two"]


def test_enrolments_follow_a_merged_contact(frozen, template, identify, track, segment, drain):
    make_loop(steps=[(0, template("One", subject="one")), (60, template("Two", subject="two"))])
    identify("u1", email="old@example.com")
    identify("u2", email="new@example.com")
    track(user_id="u1")
    run_sends()
    client, _ = segment
    alias = {"type": "alias", "previousId": "u1", "userId": "u2", "timestamp": frozen.now().isoformat()}
    assert client.post("/v1/alias", alias).status_code == 200
    drain()
    enrolment = Enrolment.objects.get()
    assert enrolment.contact.user_id == "u2"
    frozen.advance(hours=2)
    run_sends()
    assert [(m.subject, m.to) for m in mail.outbox] == [("one", ["old@example.com"]), ("two", ["new@example.com"])]


def test_an_erased_contact_leaves_the_figures_and_gets_nothing_more(frozen, template, identify, track):
    from contacts.services import contact_erase

    loop = make_loop(steps=[(0, template("One", subject="one")), (60, template("Two", subject="two"))])
    ada = identify("u1")
    track(user_id="u1", properties={"plan": "pro"})
    run_sends()
    contact_erase(contact=ada, requested_by="test")
    enrolment = Enrolment.objects.get()
    assert enrolment.contact is None and enrolment.event == {}
    frozen.advance(hours=2)
    run_sends()
    frozen.advance(minutes=10)
    run_sends()
    assert subjects() == ["one"]
    enrolment.refresh_from_db()
    assert enrolment.status == EnrolmentStatus.EXITED and "contact erased" in enrolment.reason
    assert loop_totals([loop.pk])[loop.pk]["started"] == 1


def test_a_step_cancelled_by_staff_ends_the_enrolment_with_that_reason(frozen, template, identify, track):
    from campaigns.email.services import email_sends_cancel

    make_loop(steps=[(60, template())])
    identify("u1")
    track(user_id="u1")
    email_sends_cancel(keys=[sends()[0].key], reason="cancelled by staff")
    frozen.advance(hours=2)
    run_sends()
    enrolment = Enrolment.objects.get()
    assert enrolment.status == EnrolmentStatus.EXITED
    assert enrolment.reason == "step 1 skipped: cancelled by staff"
