"""The partners' rules for surveys, on their recorded payloads (tests/fixtures): Promoter surveys
only userIds identified before and records the others as `not_identified`; Retently takes the
customer from the track's properties first, so its audience sees them."""

from __future__ import annotations

import pytest

from campaigns.surveys.models import SurveyDispatch
from contacts.models import Contact, PropertyDefinition
from tests.campaigns.surveys.conftest import make_campaign, run_work, survey_sends
from tests.kinds.conftest import apply, fixture
from tests.kinds.test_partner_fixtures import statuses

pytestmark = pytest.mark.django_db


@pytest.fixture
def kind(db):
    from tests.conftest import make_integration

    def make(name: str, **settings):
        integration, _key = make_integration(name, **settings)
        return integration

    return make


def test_promoter_surveys_an_identified_user_and_records_the_unidentified(kind):
    promoter = kind("promoter")
    campaign = make_campaign(trigger_events=["Order Delivered"], integration=promoter)
    rows = apply(
        promoter,
        fixture("promoter/identify"),
        fixture("promoter/track_identified"),
        fixture("promoter/track_unidentified"),
    )
    assert statuses(rows) == {
        "promoter-identify-1": "processed",
        "promoter-track-1": "processed",
        "promoter-track-2": "skipped",
    }
    by_user = {d.user_id: d for d in SurveyDispatch.objects.filter(campaign=campaign)}
    assert by_user["p-42"].status == "scheduled"
    assert by_user["p-42"].contact == Contact.objects.get(user_id="p-42")
    unknown = by_user["p-unknown"]
    assert (unknown.status, unknown.reason, unknown.contact) == ("skipped", "not_identified", None)
    assert "'p-unknown' was not identified before" in unknown.note
    assert unknown.event["name"] == "Order Delivered"
    run_work("survey_dispatch")
    assert [s.to for s in survey_sends()] == ["nps@example.com"]
    campaign.refresh_from_db()
    assert campaign.status == "active"


def test_promoter_records_not_identified_once_per_message_and_only_for_matching_campaigns(kind):
    promoter = kind("promoter")
    matching = make_campaign(name="Delivered", trigger_events=["Order Delivered"])
    make_campaign(name="Other event", trigger_events=["Order Placed"])
    make_campaign(name="Other integration", trigger_events=["Order Delivered"], integration=kind("segment"))
    rows = apply(promoter, fixture("promoter/track_unidentified"))
    assert rows[0].status == "skipped"
    # The same inbox row applied again (a retried chunk) records nothing new.
    from integrations.drain import apply_rows

    apply_rows(rows)
    assert list(SurveyDispatch.objects.values_list("campaign_id", "reason")) == [(matching.pk, "not_identified")]
    # A ready campaign waits for an identified user's event to become active.
    matching.refresh_from_db()
    assert matching.status == "ready"


def test_promoter_track_without_a_user_id_is_not_identified(kind):
    promoter = kind("promoter")
    make_campaign(trigger_events=["Order Delivered"])
    payload = {**fixture("promoter/track_unidentified"), "messageId": "anon-track", "anonymousId": "a-1"}
    del payload["userId"]
    apply(promoter, payload)
    row = SurveyDispatch.objects.get()
    assert (row.reason, row.user_id, row.note) == ("not_identified", "", "the track has no userId")


def test_retently_creates_the_customer_from_the_track_before_the_audience_is_checked(kind):
    PropertyDefinition.objects.create(name="country", type="text")
    retently = kind("retently", event_filter="Place order")
    campaign = make_campaign(
        trigger_events=["Place order"],
        audience={"match": "all", "conditions": [{"property": "country", "operator": "is", "value": "USA"}]},
    )
    rows = apply(retently, fixture("retently/track_place_order"), fixture("retently/track_no_email"))
    assert statuses(rows)["retently-order-1"] == "processed"
    contact = Contact.objects.get(email="buyer@example.com")
    assert contact.properties["country"] == "USA"
    dispatch = SurveyDispatch.objects.get(campaign=campaign)
    assert (dispatch.status, dispatch.contact) == ("scheduled", contact)
    # The refused track (no email) surveys nobody and is not a dispatch: there is no one to survey.
    assert SurveyDispatch.objects.count() == 1
