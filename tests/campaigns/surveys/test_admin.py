"""The surveys' admin pages: every page opens with real rows; the campaign page shows its ID,
event names, figures, trend chart and split; Activate says why it cannot (no_logo), asks
first and says what it did; Pause; CSV export; the delivery log's Replay."""

from __future__ import annotations

import csv
import io

import pytest
from django.core import mail
from django.urls import reverse

from campaigns.notifications.models import NotificationRule
from campaigns.surveys.models import Autoresponder, Campaign, SurveyDispatch, SurveyResponse
from campaigns.surveys.responses import response_record
from campaigns.webhooks.models import Delivery, WebhookSubscription
from campaigns.webhooks.services import webhook_events_emit
from tests.campaigns.surveys.conftest import make_campaign, run_work, survey_template

pytestmark = pytest.mark.django_db

MODELS = ("campaign", "surveydispatch", "surveyresponse", "webhooksubscription", "delivery", "notificationrule")


@pytest.fixture
def answered(inbound, frozen, receiver):
    campaign = make_campaign(name="Post-purchase NPS")
    Autoresponder.objects.create(campaign=campaign, kind="detractor", template=survey_template(name="Sorry"))
    inbound.identify("ada", country="France")
    inbound.identify("bob")
    inbound.track(user_id="ada")
    inbound.track(user_id="bob", when=frozen.advance(60))  # second one: the same campaign, another person
    run_work("survey_dispatch", "email_send", "surveys")
    WebhookSubscription.objects.create(url=f"{receiver.url}/hooks", events=["response.created"])
    NotificationRule.objects.create(name="CX", channel="email", emails="cx@acme.example", events=["detractor"])
    for dispatch, score in zip(SurveyDispatch.objects.order_by("pk"), (3, 10), strict=True):
        response_record(dispatch_id=dispatch.pk, score=score, comment="Late" if score == 3 else "")
    run_work("webhook")
    mail.outbox.clear()
    return campaign


def test_every_page_opens(staff, answered):
    for model in MODELS:
        prefix = f"admin:campaigns_{model}"
        assert staff.get(reverse(f"{prefix}_changelist")).status_code == 200, model
        if model in ("campaign", "webhooksubscription", "notificationrule"):
            assert staff.get(reverse(f"{prefix}_add")).status_code == 200, model
        from django.apps import apps

        obj = apps.get_model("campaigns", model).objects.order_by("pk").first()
        assert staff.get(reverse(f"{prefix}_change", args=[obj.pk])).status_code == 200, model
    contact = SurveyResponse.objects.first().contact
    page = staff.get(reverse("admin:contacts_contact_change", args=[contact.pk])).content.decode()
    assert "survey responses" in page.lower()


def test_the_campaign_page_shows_setup_figures_and_split(staff, answered):
    page = staff.get(reverse("admin:campaigns_campaign_change", args=[answered.pk])).content.decode()
    assert f'id="sy-campaign-id">{answered.pk}<' in page
    assert "<code>Order Completed</code>" in page
    assert 'id="sy-survey-score">0.0<' in page  # one promoter, one detractor
    assert "promoters" in page and "detractors" in page and "passives" in page
    assert "by week" in page and "<canvas" in page
    listing = staff.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    assert "Post-purchase NPS" in listing and "campaign__id__exact" in listing


def test_activate_says_why_not_then_asks_and_activates(staff, db):
    campaign = make_campaign(name="No logo yet", template=survey_template(logo_url=""), activate=False)
    url = reverse("admin:campaigns_campaign_activate_one", args=[campaign.pk])
    answer = staff.get(url, follow=True)
    assert "Not activated (no_logo)" in answer.content.decode()
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"
    campaign.template = survey_template()
    campaign.save()
    ask = staff.get(url)
    assert ask.status_code == 200 and "Yes, activate" in ask.content.decode()
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"
    done = staff.post(url, {"confirm": "yes"}, follow=True)
    assert "Activated" in done.content.decode()
    assert Campaign.objects.get(pk=campaign.pk).status == "ready"
    pause = reverse("admin:campaigns_campaign_pause_one", args=[campaign.pk])
    assert "Yes, pause" in staff.get(pause).content.decode()
    staff.post(pause, {"confirm": "yes"})
    assert Campaign.objects.get(pk=campaign.pk).status == "paused"


def test_the_form_refuses_a_template_without_a_logo_on_a_live_campaign(staff, db):
    campaign = make_campaign(name="Live")
    bare = survey_template(logo_url="")
    data = {
        "name": "Live",
        "metric": "nps",
        "template": bare.pk,
        "question": "Q?",
        "trigger_events": "Order Completed",
        "sample_percent": 100,
        "delay_value": 0,
        "delay_unit": "minutes",
        "reminders-TOTAL_FORMS": 0,
        "reminders-INITIAL_FORMS": 0,
        "autoresponders-TOTAL_FORMS": 0,
        "autoresponders-INITIAL_FORMS": 0,
    }
    answer = staff.post(reverse("admin:campaigns_campaign_change", args=[campaign.pk]), data)
    assert answer.status_code == 200 and "no_logo" in answer.content.decode()
    assert Campaign.objects.get(pk=campaign.pk).template_id != bare.pk


def test_responses_filter_and_export(staff, answered):
    listing = reverse("admin:campaigns_surveyresponse_changelist")
    page = staff.get(f"{listing}?category=detractor").content.decode()
    rows = page.split("<tbody", 1)[1].split("</tbody>", 1)[0]
    assert "Late" in rows and "promoter" not in rows and "detractor" in rows
    assert staff.get(f"{listing}?commented=no&campaign__id__exact={answered.pk}").status_code == 200
    export = staff.get(reverse("admin:campaigns_campaign_export_one", args=[answered.pk]))
    table = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert table[0][:5] == ["id", "campaign", "contact", "email", "score"]
    assert sorted(row[4] for row in table[1:]) == ["10", "3"]
    picked = staff.post(
        listing,
        {"action": "export_csv", "_selected_action": [SurveyResponse.objects.get(score=3).pk]},
    )
    rows = list(csv.reader(io.StringIO(b"".join(picked.streaming_content).decode())))
    assert [row[4] for row in rows[1:]] == ["3"]
    dispatches = staff.get(reverse("admin:campaigns_surveydispatch_changelist") + "?surveyed=yes").content.decode()
    assert "responded" in dispatches


def test_the_delivery_log_replays(staff, answered, receiver):
    delivery = Delivery.objects.order_by("pk").first()  # one per response
    page = staff.get(reverse("admin:campaigns_delivery_change", args=[delivery.pk])).content.decode()
    assert "attempts (with the receiver" in page.lower() and "200" in page
    url = reverse("admin:campaigns_delivery_replay_one", args=[delivery.pk])
    assert "Yes, send again" in staff.get(url).content.decode()
    done = staff.post(url, {"confirm": "yes"}, follow=True)
    assert "1 queued to send again now" in done.content.decode()
    run_work("webhook")
    assert len(receiver.received("/hooks")) == 3
    assert len({call.headers["webhook-id"] for call in receiver.received("/hooks")}) == 2
    webhook_events_emit(events=[("response.created", {"id": 1})])
    assert Delivery.objects.count() == 3
