"""Triggers and the schedule rules: a Segment track through the real endpoint and drain surveys
the contact, or records the reason it did not (filtered, sampled_out, throttled,
recently_surveyed, suppressed, unsubscribed), under a clock the tests move."""

from __future__ import annotations

from datetime import timedelta

import pytest

from campaigns.email.models import EmailSend
from campaigns.surveys.models import Campaign, CampaignStatus, SurveyDispatch
from campaigns.surveys.rules import sample_point
from campaigns.surveys.services import campaign_pause
from contacts.models import ListMembership, MailingList
from contacts.services import contact_unsubscribe, suppressions_add
from tests.campaigns.surveys.conftest import (
    LOGO,
    dispatches,
    make_campaign,
    outbox,
    run_work,
    score_links,
    survey_sends,
)

pytestmark = pytest.mark.django_db


def test_a_matching_track_surveys_the_contact_once_and_activates_the_campaign(inbound, frozen):
    nps_list = MailingList.objects.create(list_id="surveyed", name="Surveyed")
    campaign = make_campaign(contact_list=nps_list, reply_to="cx@acme.example")
    assert campaign.status == CampaignStatus.READY
    contact = inbound.identify("u1", firstName="Ada")
    inbound.track(user_id="u1", properties={"order_id": "A-100"})

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.ACTIVE and campaign.first_event_at == frozen.now()
    [dispatch] = dispatches()
    assert (dispatch.status, dispatch.reason, dispatch.contact_id) == ("scheduled", "", contact.pk)
    assert dispatch.due_at == frozen.now() and dispatch.next_attempt_at == frozen.now()
    assert survey_sends() == []  # the drain only records the trigger; the email is made when due
    run_work("survey_dispatch")
    [send] = survey_sends()
    assert send.key == f"survey:{dispatch.pk}" and send.reply_to == "cx@acme.example"

    run_work()
    [message] = outbox()
    assert message.to == [contact.email]
    assert message.reply_to == ["cx@acme.example"]
    html = message.alternatives[0][0]
    links = score_links(html)
    assert sorted(links) == list(range(11))
    assert all(
        url.startswith("https://surveys.example.com/s/") and url.endswith(f"score={n}") for n, url in links.items()
    )
    assert LOGO in html and "How likely are you to recommend Acme?" in html and "A-100" in html

    dispatch.refresh_from_db()
    assert dispatch.status == "sent" and dispatch.sent_at == frozen.now() and dispatch.followed_up
    contact.refresh_from_db()
    assert contact.properties["last_surveyed_at"].startswith(frozen.now().date().isoformat())
    assert ListMembership.objects.filter(contact=contact, mailing_list=nps_list, subscribed=True).exists()
    from campaigns.surveys.stats import figures

    assert figures(campaign).sent == 1

    # The same message again (a sender's retry) is a duplicate; a re-drained chunk announces the
    # same event ids: neither makes a second survey.
    inbound.track(user_id="u1", properties={"order_id": "A-100"})
    from campaigns.surveys.triggers import survey_events_apply
    from contacts.models import ContactEvent
    from contacts.signals import RecordedEvent

    event = ContactEvent.objects.get(name="Order Completed")
    again = RecordedEvent(
        contact.pk, event.pk, event.name, event.properties, event.timestamp, event.integration_id, "segment"
    )
    survey_events_apply(events=[again])
    assert SurveyDispatch.objects.count() == 1 and EmailSend.objects.filter(purpose="survey").count() == 1


def test_drafts_paused_campaigns_other_names_and_other_integrations_survey_nobody(inbound, frozen):
    from tests.conftest import make_integration

    other, _key = make_integration("segment", name="Other source")
    draft = make_campaign(activate=False, name="Draft")
    paused = make_campaign(name="Paused")
    campaign_pause(campaign=paused)
    make_campaign(name="Elsewhere", integration=other)
    make_campaign(name="Signup", trigger_events=["Signed Up"])
    inbound.identify("u1")
    inbound.track(user_id="u1")
    assert SurveyDispatch.objects.count() == 0
    assert Campaign.objects.get(pk=draft.pk).status == "draft"
    # The integration it is limited to does trigger it.
    mine = make_campaign(name="Mine", integration=inbound.integration)
    inbound.track(user_id="u1", when=frozen.advance(60))
    assert [d.campaign_id for d in dispatches()] == [mine.pk]


def test_the_audience_filters_with_its_reason(inbound, frozen):
    make_campaign(audience={"match": "all", "conditions": [{"property": "country", "operator": "is", "value": "USA"}]})
    inbound.identify("us", country="USA")
    inbound.identify("fr", country="France")
    inbound.track(user_id="us")
    inbound.track(user_id="fr")
    by_user = {d.contact.user_id: d for d in dispatches()}
    assert by_user["us"].status == "scheduled"
    assert by_user["fr"].status == "skipped" and by_user["fr"].reason == "filtered"
    assert "country" in by_user["fr"].note
    assert by_user["fr"].due_at is None and by_user["fr"].next_attempt_at is None
    run_work("survey_dispatch")
    assert len(survey_sends()) == 1


def test_suppressed_and_unsubscribed_contacts_are_skipped_with_their_reason(inbound, frozen):
    make_campaign()
    gone = inbound.identify("gone")
    quiet = inbound.identify("quiet")
    suppressions_add(emails=[gone.email], reason="bounced")
    contact_unsubscribe(contacts=[quiet], reason="test")
    inbound.track(user_id="gone")
    inbound.track(user_id="quiet")
    reasons = {d.contact.user_id: (d.status, d.reason) for d in dispatches()}
    assert reasons == {"gone": ("skipped", "suppressed"), "quiet": ("skipped", "unsubscribed")}
    assert survey_sends() == []


def test_a_delay_in_minutes_hours_or_days_counts_from_the_event(inbound, frozen):
    minutes = make_campaign(name="15 min", delay_minutes=15, trigger_events=["A"])
    hours = make_campaign(name="2 h", trigger_events=["B"])
    hours.delay_value, hours.delay_unit = 2, "hours"
    hours.save()
    days = make_campaign(name="7 d", trigger_events=["C"])
    days.delay_value, days.delay_unit = 7, "days"
    days.save()
    for n, name in enumerate("ABC"):
        inbound.identify(f"p{n}")
        inbound.track(name, user_id=f"p{n}", when=frozen.now() - timedelta(minutes=1))
    event_at = frozen.now() - timedelta(minutes=1)
    due = {d.campaign_id: d.due_at for d in dispatches()}
    assert due == {
        minutes.pk: event_at + timedelta(minutes=15),
        hours.pk: event_at + timedelta(hours=2),
        days.pk: event_at + timedelta(days=7),
    }
    run_work()
    assert outbox() == []
    frozen.advance(14 * 60)
    run_work()
    assert [m.to for m in outbox()] == [["p0@example.com"]]
    frozen.advance(2 * 3600)
    run_work()
    assert len(outbox()) == 2
    frozen.advance(7 * 86400)
    run_work()
    assert len(outbox()) == 3


def test_throttle_days_holds_back_a_new_survey_in_the_same_campaign(inbound, frozen, settings):
    settings.SURVEY_CONTACT_LIMIT_HOURS = 0  # this test is about the campaign's own throttle
    make_campaign(throttle_days=30)
    inbound.identify("u1")
    inbound.track(user_id="u1")
    inbound.track(user_id="u1", when=frozen.advance(10 * 86400))
    inbound.track(user_id="u1", when=frozen.advance(21 * 86400))  # 31 days after the first
    assert [(d.status, d.reason) for d in dispatches()] == [
        ("scheduled", ""),
        ("skipped", "throttled"),
        ("scheduled", ""),
    ]
    assert "throttle 30 day(s)" in dispatches()[1].note


def test_without_a_throttle_every_trigger_surveys_once_the_daily_limit_allows(inbound, frozen, settings):
    settings.SURVEY_CONTACT_LIMIT_HOURS = 0
    make_campaign()
    inbound.identify("u1")
    inbound.track(user_id="u1")
    inbound.track(user_id="u1", when=frozen.advance(60))
    assert [d.status for d in dispatches()] == ["scheduled", "scheduled"]


def test_the_24_hour_limit_holds_across_campaigns(inbound, frozen):
    first = make_campaign(name="Orders")
    second = make_campaign(name="Also orders")
    third = make_campaign(name="Support", trigger_events=["Ticket Closed"])
    inbound.identify("u1")
    inbound.track(user_id="u1")
    rows = {d.campaign_id: d for d in dispatches()}
    assert rows[first.pk].status == "scheduled"
    assert (rows[second.pk].status, rows[second.pk].reason) == ("skipped", "throttled")
    assert "24 hours" in rows[second.pk].note
    inbound.track("Ticket Closed", user_id="u1", when=frozen.advance(23 * 3600))
    assert SurveyDispatch.objects.get(campaign=third).reason == "throttled"
    inbound.track("Ticket Closed", user_id="u1", when=frozen.advance(3600 + 1))
    assert SurveyDispatch.objects.filter(campaign=third, status="scheduled").count() == 1


def test_the_24_hour_limit_is_checked_again_when_delayed_surveys_come_due(inbound, frozen):
    """Two surveys scheduled more than a day apart that a backlog brings together: one goes."""
    late = make_campaign(name="Later", trigger_events=["A"], delay_minutes=26 * 60)
    soon = make_campaign(name="Sooner", trigger_events=["B"])
    inbound.identify("u1")
    inbound.track("A", user_id="u1")  # due in 26 hours
    frozen.advance(3 * 3600)
    inbound.track("B", user_id="u1", when=frozen.now() - timedelta(hours=3))  # due 3 hours ago… now
    assert [d.status for d in dispatches()] == ["scheduled", "scheduled"]
    frozen.advance(30 * 3600)  # the worker was down: both are due now
    run_work()
    rows = {d.campaign_id: d for d in dispatches()}
    assert rows[soon.pk].status == "sent"
    assert (rows[late.pk].status, rows[late.pk].reason) == ("skipped", "throttled")
    assert len(outbox()) == 1


def test_not_surveyed_by_any_campaign_in_the_last_n_days(inbound, frozen, settings):
    settings.SURVEY_CONTACT_LIMIT_HOURS = 0
    make_campaign(name="Orders")
    picky = make_campaign(name="Support", trigger_events=["Ticket Closed"], not_surveyed_days=14)
    inbound.identify("u1")
    inbound.track(user_id="u1")
    run_work()
    inbound.track("Ticket Closed", user_id="u1", when=frozen.advance(13 * 86400))
    row = SurveyDispatch.objects.get(campaign=picky)
    assert (row.status, row.reason) == ("skipped", "recently_surveyed")
    inbound.track("Ticket Closed", user_id="u1", when=frozen.advance(2 * 86400))
    assert SurveyDispatch.objects.filter(campaign=picky, status="scheduled").count() == 1


def test_sampling_is_the_same_for_the_same_message_and_near_the_percent(inbound, frozen, settings):
    settings.SURVEY_CONTACT_LIMIT_HOURS = 0
    campaign = make_campaign(sample_percent=30)
    inbound.identify("u1")
    for n in range(60):
        inbound.track(user_id="u1", when=frozen.advance(60))
    rows = dispatches()
    chosen = [d.status == "scheduled" for d in rows]
    assert {d.reason for d in rows if d.status == "skipped"} == {"sampled_out"}
    assert 8 <= sum(chosen) <= 30  # 30% of 60, give or take chance
    # The decision is a function of the message: computed again, it gives the same answers.
    again = [sample_point(campaign.pk, str(d.contact_id), d.event["name"], d.event_at) < 30 for d in rows]
    assert again == chosen
    # Replaying the same messages (erased rows and all) decides the same way.
    from campaigns.surveys.triggers import survey_events_apply
    from contacts.models import ContactEvent
    from contacts.signals import RecordedEvent

    SurveyDispatch.objects.all().delete()
    EmailSend.objects.all().delete()
    events = [
        RecordedEvent(e.contact_id, e.pk, e.name, e.properties, e.timestamp, e.integration_id, "segment")
        for e in ContactEvent.objects.filter(name="Order Completed").order_by("timestamp")
    ]
    survey_events_apply(events=events)
    assert [d.status == "scheduled" for d in dispatches()] == chosen


def test_raising_the_sample_keeps_those_already_in():
    from datetime import UTC, datetime

    moments = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n) for n in range(500)]
    low = {m for m in moments if sample_point(1, "7", "X", m) < 20}
    high = {m for m in moments if sample_point(1, "7", "X", m) < 50}
    assert low < high
    assert 60 <= len(low) <= 140 and 200 <= len(high) <= 300
