"""The staff API for surveys, in CONTRACT.md's shapes: campaigns (activate with no_logo, pause,
metrics), dispatches with their reasons, responses as JSON and CSV; bad input is a 400 naming
the field."""

from __future__ import annotations

import csv
import io
import json

import pytest

from campaigns.surveys.models import Campaign, SurveyDispatch, SurveyResponse
from campaigns.surveys.responses import response_record
from tests.campaigns.surveys.conftest import make_campaign, run_work, survey_template

pytestmark = pytest.mark.django_db

FIELDS = {
    "id",
    "name",
    "metric",
    "status",
    "integration",
    "trigger_events",
    "template",
    "question",
    "contact_list",
    "reply_to",
    "audience",
    "not_surveyed_days",
    "sample_percent",
    "delay_minutes",
    "throttle_days",
    "reminders",
}


def api(client, method: str, path: str, body=None):
    call = getattr(client, method)
    if body is None:
        return call(path)
    return call(path, json.dumps(body), content_type="application/json")


def test_create_activate_pause_and_read_a_campaign(staff):
    from contacts.models import MailingList

    MailingList.objects.create(list_id="nps", name="NPS")
    template = survey_template()
    nudge = survey_template(name="Nudge")
    body = {
        "name": "Post-purchase",
        "metric": "csat",
        "trigger_events": ["Order Completed", "Order Delivered"],
        "template": template.pk,
        "question": "How satisfied are you?",
        "contact_list": "nps",
        "reply_to": "cx@acme.example",
        "audience": {"match": "any", "conditions": [{"property": "country", "operator": "is", "value": "USA"}]},
        "not_surveyed_days": 30,
        "sample_percent": 50,
        "delay_minutes": 2880,
        "throttle_days": 90,
        "reminders": [{"delay_minutes": 4320, "template": nudge.pk}],
    }
    created = api(staff, "post", "/api/v1/campaigns/", body)
    assert created.status_code == 201, created.content
    data = created.json()
    assert set(data) == FIELDS
    assert data["status"] == "draft" and data["integration"] is None
    assert {k: data[k] for k in body} == body
    campaign = Campaign.objects.get()
    assert (campaign.delay_value, campaign.delay_unit) == (2, "days")

    ready = api(staff, "post", f"/api/v1/campaigns/{campaign.pk}/activate/")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    paused = api(staff, "post", f"/api/v1/campaigns/{campaign.pk}/pause/")
    assert paused.json()["status"] == "paused"
    assert api(staff, "post", f"/api/v1/campaigns/{campaign.pk}/activate/").json()["status"] == "ready"
    # status is read-only
    patched = api(staff, "patch", f"/api/v1/campaigns/{campaign.pk}/", {"status": "active", "reminders": []})
    assert patched.json()["status"] == "ready" and patched.json()["reminders"] == []
    listed = api(staff, "get", "/api/v1/campaigns/").json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == campaign.pk


def test_activation_without_a_logo_is_refused_with_no_logo(staff):
    template = survey_template(logo_url="")
    campaign = make_campaign(template=template, activate=False)
    answer = api(staff, "post", f"/api/v1/campaigns/{campaign.pk}/activate/")
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "no_logo"
    assert template.name in body["message"] and "logo" in body["message"]
    assert Campaign.objects.get().status == "draft"

    scaleless = survey_template(html="<p>{{ event.survey.question }}</p>")
    campaign.template = scaleless
    campaign.save()
    assert api(staff, "post", f"/api/v1/campaigns/{campaign.pk}/activate/").json()["code"] == "no_scale"
    campaign.template, campaign.trigger_events = survey_template(), []
    campaign.save()
    assert api(staff, "post", f"/api/v1/campaigns/{campaign.pk}/activate/").json()["code"] == "no_trigger_events"
    # A live campaign cannot be switched to a template without a logo either.
    live = make_campaign(name="Live")
    answer = api(staff, "patch", f"/api/v1/campaigns/{live.pk}/", {"template": template.pk})
    assert answer.status_code == 400 and "no_logo" in answer.json()["template"][0]
    assert (
        api(staff, "post", f"/api/v1/campaigns/{make_campaign(name='D', activate=False).pk}/pause/").status_code == 400
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"metric": "stars"}, "metric"),
        ({"sample_percent": 0}, "sample_percent"),
        ({"sample_percent": 101}, "sample_percent"),
        ({"delay_minutes": -1}, "delay_minutes"),
        ({"throttle_days": "often"}, "throttle_days"),
        ({"trigger_events": "Order Completed"}, "trigger_events"),
        ({"trigger_events": [""]}, "trigger_events"),
        ({"template": 999999}, "template"),
        ({"integration": 999999}, "integration"),
        ({"integration": "x"}, "integration"),
        ({"contact_list": "missing"}, "contact_list"),
        ({"reply_to": "not an address"}, "reply_to"),
        ({"audience": {"conditions": [{"property": "x", "operator": "near", "value": 1}]}}, "audience"),
        ({"reminders": [{"delay_minutes": 60, "template": 1}] * 6}, "reminders"),
        ({"reminders": [{"delay_minutes": 0}]}, "reminders"),
        ({"name": ""}, "name"),
        ({"question": "a\x00b"}, "question"),
    ],
)
def test_bad_campaigns_get_a_400_naming_the_field(staff, change, field):
    template = survey_template()
    body = {"name": "Bad", "template": template.pk, **change}
    answer = api(staff, "post", "/api/v1/campaigns/", body)
    assert answer.status_code == 400, answer.content
    assert field in answer.json()


def test_an_outbound_integration_cannot_trigger_a_campaign(staff):
    from tests.conftest import make_integration

    outbound, _ = make_integration("segment_source", write_key="wk", endpoint="https://api.segment.io")
    answer = api(
        staff, "post", "/api/v1/campaigns/", {"name": "X", "template": survey_template().pk, "integration": outbound.pk}
    )
    assert answer.status_code == 400 and "integration" in answer.json()


def test_metrics_dispatches_and_responses(staff, inbound, frozen):
    campaign = make_campaign(
        audience={"match": "all", "conditions": [{"property": "vip", "operator": "is", "value": True}]}
    )
    inbound.identify("vip", vip=True)
    inbound.identify("plain", vip=False)
    inbound.track(user_id="vip")
    inbound.track(user_id="plain")
    run_work("survey_dispatch", "email_send", "surveys")
    vip = SurveyDispatch.objects.get(contact__user_id="vip")
    response_record(dispatch_id=vip.pk, score=6, comment='=HYPERLINK("http://evil")')

    metrics = api(staff, "get", f"/api/v1/campaigns/{campaign.pk}/metrics/").json()
    assert metrics == {
        "sent": 1,
        "responses": 1,
        "response_rate": 100.0,
        "score": -100.0,
        "distribution": {str(n): int(n == 6) for n in range(11)},
        "promoters": 0,
        "passives": 0,
        "detractors": 1,
    }
    assert api(staff, "get", f"/api/v1/campaigns/{campaign.pk}/metrics/?since=2099-01-01").json()["responses"] == 0
    assert "since" in api(staff, "get", f"/api/v1/campaigns/{campaign.pk}/metrics/?since=yesterday").json()

    rows = api(staff, "get", f"/api/v1/survey-dispatches/?campaign={campaign.pk}").json()["results"]
    assert [set(r) for r in rows] == [{"id", "campaign", "contact", "status", "reason", "due_at", "sent_at"}] * 2
    assert {(r["status"], r["reason"]) for r in rows} == {("responded", ""), ("skipped", "filtered")}
    plain = SurveyDispatch.objects.get(contact__user_id="plain")
    only = api(staff, "get", f"/api/v1/survey-dispatches/?contact={plain.contact_id}").json()["results"]
    assert [r["id"] for r in only] == [plain.pk]
    assert api(staff, "get", "/api/v1/survey-dispatches/?reason=filtered").json()["count"] == 1
    for bad in ("campaign=x", "contact=1.5", "status=lost", "reason=bored"):
        answer = api(staff, "get", f"/api/v1/survey-dispatches/?{bad}")
        assert answer.status_code == 400 and bad.split("=")[0] in answer.json()

    responses = api(staff, "get", f"/api/v1/survey-responses/?campaign={campaign.pk}").json()["results"]
    assert [set(r) for r in responses] == [
        {"id", "campaign", "contact", "email", "score", "comment", "created_at", "updated_at"}
    ]
    assert responses[0]["score"] == 6 and responses[0]["email"] == "vip@example.com"
    exported = staff.get(f"/api/v1/survey-responses/?campaign={campaign.pk}&format=csv")
    assert exported.status_code == 200 and exported["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert table[0] == ["id", "campaign", "contact", "email", "score", "comment", "created_at", "updated_at"]
    assert table[1][3:6] == ["vip@example.com", "6", '\'=HYPERLINK("http://evil")']
    assert api(staff, "get", "/api/v1/survey-responses/?campaign=abc").status_code == 400


def test_the_api_is_for_staff_only(client, db):
    for path in ("/api/v1/campaigns/", "/api/v1/survey-dispatches/", "/api/v1/survey-responses/", "/api/v1/webhooks/"):
        assert client.get(path).status_code in (401, 403)


def test_the_metric_cannot_change_once_answered(staff, inbound, frozen):
    campaign = make_campaign()
    inbound.identify("u1")
    inbound.track(user_id="u1")
    run_work("survey_dispatch", "email_send", "surveys")
    response_record(dispatch_id=SurveyDispatch.objects.get().pk, score=8)
    answer = api(staff, "patch", f"/api/v1/campaigns/{campaign.pk}/", {"metric": "csat"})
    assert answer.status_code == 400 and "metric" in answer.json()
    assert SurveyResponse.objects.get().score == 8


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"template": 2**70}, "template"),
        ({"reminders": [{"delay_minutes": 60, "template": 2**70}]}, "reminders"),
        ({"contact_list": "a\x00b"}, "contact_list"),
        ({"integration": 2**70}, "integration"),
        ({"trigger_events": ["a\x00b"]}, "trigger_events"),
        ({"reply_to": "a\x00@example.com"}, "reply_to"),
    ],
)
def test_hostile_values_are_a_400_not_a_server_error(staff, change, field):
    body = {"name": "Hostile", "template": survey_template().pk, **change}
    answer = api(staff, "post", "/api/v1/campaigns/", body)
    assert answer.status_code == 400, answer.content
    assert field in answer.json()
    for path in ("/api/v1/campaigns/2305843009213693952/", "/api/v1/survey-responses/99999999999999999999/"):
        assert api(staff, "get", path).status_code == 404
    hook = api(
        staff, "post", "/api/v1/webhooks/", {"url": "https://a\x00.example.com/", "events": ["response.created"]}
    )
    assert hook.status_code == 400 and "url" in hook.json()
