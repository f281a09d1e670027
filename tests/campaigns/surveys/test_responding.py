"""Answering: the page a score link opens, what commits a score (never a bare GET), changing an
answer, tampered and expired links, scanner-like opens, and what an answer does to the
contact, loops, reminders and autoresponders."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.test import Client

from campaigns.email.models import EmailSend
from campaigns.loops.models import Enrolment, Loop, LoopStep
from campaigns.surveys.links import read_token, survey_token
from campaigns.surveys.models import Autoresponder, SurveyDispatch, SurveyResponse
from campaigns.surveys.stats import figures
from contacts.models import Contact, ContactEvent
from tests.campaigns.surveys.conftest import (
    LOGO,
    make_campaign,
    outbox,
    run_work,
    score_links,
    survey_template,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def surveyed(inbound, frozen):
    """A contact who was sent the NPS survey: (campaign, contact, dispatch, {score: path})."""

    def make(user_id: str = "u1", **campaign_fields):
        campaign = campaign_fields.pop("campaign", None) or make_campaign(**campaign_fields)
        contact = inbound.identify(user_id)
        inbound.track(user_id=user_id, properties={"order_id": "A-1"})
        mail.outbox.clear()
        run_work()
        [message] = [m for m in outbox() if m.to == [contact.email]]
        links = {n: urlsplit(url) for n, url in score_links(message.alternatives[0][0]).items()}
        dispatch = SurveyDispatch.objects.get(contact=contact, campaign=campaign)
        return campaign, contact, dispatch, {n: f"{u.path}?{u.query}" for n, u in links.items()}

    return make


def post(path: str, **data):
    return Client().post(path.split("?")[0], data)


def test_opening_a_link_shows_the_page_with_the_score_chosen_and_records_nothing(surveyed):
    campaign, contact, dispatch, links = surveyed()
    page = Client().get(links[9])
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="score-9" value="9" checked' in html
    assert LOGO in html and "How likely are you to recommend Acme?" in html
    assert '<textarea id="comment"' in html and "<script>" in html
    assert page["Cache-Control"] == "no-store"
    for score in (0, 10, 3):
        assert Client().get(links[score]).status_code == 200
    assert SurveyResponse.objects.count() == 0
    dispatch.refresh_from_db()
    assert dispatch.status == "sent" and [o[0] for o in dispatch.opens] == [9, 0, 10, 3]


def test_the_form_commits_score_and_comment_and_posting_again_changes_them(surveyed, frozen):
    campaign, contact, dispatch, links = surveyed()
    answer = post(links[9], score="9", comment="Fast delivery")
    assert answer.status_code == 200 and b"Thank you" in answer.content
    response = SurveyResponse.objects.get()
    assert (response.score, response.category, response.comment, response.via) == (
        9,
        "promoter",
        "Fast delivery",
        "form",
    )
    assert response.email == contact.email
    dispatch.refresh_from_db()
    assert dispatch.status == "responded" and dispatch.responded_at == frozen.now()

    frozen.advance(30)
    post(links[9], score="4", comment="Actually the box was broken")
    response = SurveyResponse.objects.get()
    assert (response.score, response.category, response.comment) == (4, "detractor", "Actually the box was broken")
    assert response.updated_at > response.created_at
    assert figures(campaign).distribution == {4: 1}


def test_the_script_commits_the_score_alone_and_keeps_the_comment(surveyed):
    campaign, contact, dispatch, links = surveyed()
    post(links[7], score="7", comment="Good")
    auto = post(links[8], score="8", mode="auto")
    assert auto.status_code == 200 and auto.json() == {"saved": True, "score": 8}
    response = SurveyResponse.objects.get()
    assert (response.score, response.comment, response.via) == (8, "Good", "script")


def test_a_comment_with_a_nul_or_too_long_is_kept_as_far_as_it_can_be(surveyed):
    campaign, contact, dispatch, links = surveyed()
    assert post(links[9], score="9", comment="fine\x00 thanks").status_code == 200
    assert SurveyResponse.objects.get().comment == "fine thanks"
    post(links[9], score="9", comment="x" * 6000)
    assert len(SurveyResponse.objects.get().comment) == 5000


def test_bad_scores_get_a_400_naming_the_field(surveyed):
    campaign, contact, dispatch, links = surveyed()
    for bad in ("11", "-1", "nine", "", "١"):
        answer = post(links[9], score=bad)
        assert answer.status_code == 400, bad
        assert b"Choose a score from 0 to 10" in answer.content
        auto = post(links[9], score=bad, mode="auto")
        assert auto.status_code == 400 and auto.json()["field"] == "score"
    assert SurveyResponse.objects.count() == 0
    # A link with a bad score still shows the page, with nothing chosen.
    page = Client().get(links[9].replace("score=9", "score=99"))
    assert page.status_code == 200 and b" checked" not in page.content


def test_tampered_and_expired_links_get_a_clear_page(surveyed, frozen, settings):
    campaign, contact, dispatch, links = surveyed()
    path = links[9].split("?")[0]
    token = path.rstrip("/").rsplit("/", 1)[1]
    other = survey_token(dispatch_id=dispatch.pk + 1, due_at=dispatch.due_at)
    forged = token.split(".")[0] + "9." + token.split(".", 1)[1]
    for bad in (
        token[:-3] + "abc",
        f"{dispatch.pk}.zzzz",
        forged,
        "x" * 300,
        other.replace(str(dispatch.pk + 1), str(dispatch.pk)),
    ):
        page = Client().get(f"/s/{bad}/?score=9")
        assert page.status_code == 404, bad
        assert b"This survey link is not valid" in page.content
        assert Client().post(f"/s/{bad}/", {"score": "9"}).status_code == 404
    # A well-signed token for a dispatch that does not exist, or was never sent.
    assert Client().get(f"/s/{other}/?score=9").status_code == 404
    assert read_token(token).dispatch_id == dispatch.pk

    frozen.advance(settings.SURVEY_LINK_DAYS * 86400 + 60)
    page = Client().get(links[9])
    assert page.status_code == 410 and b"This survey has closed" in page.content
    assert post(links[9], score="9").status_code == 410
    assert SurveyResponse.objects.count() == 0


def test_every_score_opened_within_a_second_flags_the_survey(surveyed, frozen):
    campaign, contact, dispatch, links = surveyed()
    client = Client()
    for score in range(11):
        client.get(links[score])
    dispatch.refresh_from_db()
    assert dispatch.scanner is True
    post(links[9], score="9", mode="auto")
    assert SurveyResponse.objects.get().scanner is True


def test_a_person_opening_a_few_links_is_not_flagged(surveyed, frozen):
    campaign, contact, dispatch, links = surveyed()
    for score in range(11):
        Client().get(links[score])
        frozen.advance(0.2)  # 2 seconds in all: slower than a scanner
    dispatch.refresh_from_db()
    assert dispatch.scanner is False


def test_the_answer_goes_on_the_contact_and_records_survey_responded(surveyed):
    campaign, contact, dispatch, links = surveyed()
    post(links[3], score="3")
    contact.refresh_from_db()
    assert contact.properties["nps_score"] == 3 and contact.properties["nps_category"] == "detractor"
    assert contact.properties["last_surveyed_at"]
    event = ContactEvent.objects.get(contact=contact, name="Survey Responded")
    assert event.type == "internal"
    assert event.properties | {"survey_id": 0, "response_id": 0} == {
        "score": 3,
        "category": "detractor",
        "metric": "nps",
        "campaign": campaign.pk,
        "campaign_name": campaign.name,
        "comment": "",
        "survey_id": 0,
        "response_id": 0,
    }
    post(links[10], score="10")  # a change updates the contact, but is not a second event
    contact.refresh_from_db()
    assert (contact.properties["nps_score"], contact.properties["nps_category"]) == (10, "promoter")
    assert ContactEvent.objects.filter(name="Survey Responded").count() == 1


def test_a_detractors_answer_starts_a_save_loop(surveyed, frozen):
    template = survey_template(name="Sorry", html="<p>We are sorry, {{ contact.first_name }}.</p>")
    loop = Loop.objects.create(
        name="Save detractors",
        enabled=True,
        trigger_events=["Survey Responded"],
        audience={"match": "all", "conditions": [{"property": "nps_category", "operator": "is", "value": "detractor"}]},
    )
    LoopStep.objects.create(loop=loop, position=1, delay_value=0, delay_unit="minutes", template=template)
    campaign, contact, dispatch, links = surveyed()
    other = surveyed("u2", campaign=campaign)
    post(links[2], score="2")
    post(other[3][10], score="10")
    assert [e.contact_id for e in Enrolment.objects.filter(loop=loop)] == [contact.pk]


def test_reminders_go_to_those_who_have_not_answered_and_stop_on_an_answer(surveyed, frozen):
    nudge = survey_template(name="Reminder", subject="A quick reminder")
    last = survey_template(name="Last call", subject="Last call")
    campaign = make_campaign(reminders=[(3 * 1440, nudge), (7 * 1440, last)])
    _c, ada, ada_dispatch, ada_links = surveyed("ada", campaign=campaign)
    frozen.advance(3600)
    _c, bob, bob_dispatch, bob_links = surveyed("bob", campaign=campaign)
    keys = set(EmailSend.objects.filter(purpose="reminder").values_list("key", flat=True))
    assert keys == {f"survey:{d.pk}:reminder:{n}" for d in (ada_dispatch, bob_dispatch) for n in (1, 2)}
    reminder = EmailSend.objects.get(key=f"survey:{ada_dispatch.pk}:reminder:1")
    assert reminder.due_at == ada_dispatch.due_at + timedelta(days=3)

    post(ada_links[8], score="8")  # Ada answers: her reminders are skipped
    assert set(EmailSend.objects.filter(contact=ada, purpose="reminder").values_list("status", "reason")) == {
        ("skipped", "responded")
    }

    mail.outbox.clear()
    frozen.advance(3 * 86400)
    run_work()
    assert [(m.to, m.subject) for m in outbox()] == [([bob.email], "A quick reminder")]
    # The reminder carries the same survey: its links answer it.
    links = score_links(outbox()[0].alternatives[0][0])
    assert urlsplit(links[6]).path == urlsplit(bob_links[6]).path
    post(urlsplit(links[6]).path, score="6")
    mail.outbox.clear()
    frozen.advance(5 * 86400)
    run_work()
    assert outbox() == []
    assert EmailSend.objects.get(key=f"survey:{bob_dispatch.pk}:reminder:2").reason == "responded"


def test_a_reminder_checks_again_when_due_and_stops_for_an_unsubscribe(surveyed, frozen):
    nudge = survey_template(name="Reminder", subject="A quick reminder")
    campaign = make_campaign(reminders=[(60, nudge)])
    _c, contact, dispatch, links = surveyed(campaign=campaign)
    # Answered in a way that bypassed the cancel (a response recorded while the reminder was being
    # claimed): the due-time check still skips it.
    SurveyDispatch.objects.filter(pk=dispatch.pk).update(status="responded")
    frozen.advance(3600)
    mail.outbox.clear()
    run_work()
    assert outbox() == []
    assert EmailSend.objects.get(purpose="reminder").reason == "responded"

    _c, other, _d, _l = surveyed("u2", campaign=campaign)
    from contacts.services import contact_unsubscribe

    contact_unsubscribe(contacts=[other], reason="test")
    frozen.advance(3600)
    run_work()
    assert EmailSend.objects.get(purpose="reminder", contact=other).reason.startswith("unsubscribed")


def test_one_autoresponder_per_response_after_five_to_sixty_minutes(surveyed, frozen):
    sorry = survey_template(name="Sorry", subject="Sorry to hear that", html="<p>Sorry</p>")
    review = survey_template(name="Review us", subject="Review us?", html="<p>Review</p>")
    more = survey_template(name="Tell us more", subject="Tell us more", html="<p>More</p>")
    campaign = make_campaign()
    for kind, template in (("detractor", sorry), ("promoter", review), ("no_comment", more)):
        Autoresponder.objects.create(campaign=campaign, kind=kind, template=template)
    _c, low, _d, low_links = surveyed("low", campaign=campaign)
    frozen.advance(86400)
    _c, high, _d, high_links = surveyed("high", campaign=campaign)
    frozen.advance(86400)
    _c, mid, _d, mid_links = surveyed("mid", campaign=campaign)
    now = frozen.now()
    post(low_links[1], score="1", mode="auto")
    post(low_links[1], score="1", comment="Broken")
    post(high_links[10], score="10")
    post(mid_links[7], score="7", comment="ok")
    sends = {s.contact_id: s for s in EmailSend.objects.filter(purpose="autoresponder")}
    assert {pk: s.template.name for pk, s in sends.items()} == {low.pk: "Sorry", high.pk: "Review us"}
    for send in sends.values():
        assert now + timedelta(minutes=5) <= send.due_at <= now + timedelta(minutes=60)
    mail.outbox.clear()
    frozen.advance(3600)
    run_work()
    assert sorted(m.subject for m in outbox()) == ["Review us?", "Sorry to hear that"]


def test_an_autoresponder_that_no_longer_fits_is_skipped(surveyed, frozen):
    more = survey_template(name="Tell us more", subject="Tell us more", html="<p>More</p>")
    campaign = make_campaign()
    Autoresponder.objects.create(campaign=campaign, kind="no_comment", template=more)
    _c, contact, _d, links = surveyed(campaign=campaign)
    post(links[8], score="8", mode="auto")  # no comment yet: the no-comment autoresponder waits
    send = EmailSend.objects.get(purpose="autoresponder")
    post(links[8], score="8", comment="Here is my comment")
    frozen.advance(3600)
    run_work()
    send.refresh_from_db()
    assert send.status == "skipped" and send.reason.startswith("no longer applies")


def test_metrics_count_sent_and_answers_and_a_changed_answer_moves_its_count(surveyed, frozen):
    campaign = make_campaign()
    people = [surveyed(f"p{n}", campaign=campaign) for n in range(5)]
    for (_c, _contact, _d, links), score in zip(people[:4], (10, 9, 7, 3), strict=True):
        post(links[score], score=str(score))
        frozen.advance(90000)
    post(people[3][3][9], score="9")  # 3 → 9
    result = figures(campaign)
    assert result.sent == 5
    assert result.distribution == {10: 1, 9: 2, 7: 1}
    assert result.as_api() == {
        "sent": 5,
        "responses": 4,
        "response_rate": 80.0,
        "score": 75.0,
        "distribution": {str(n): {10: 1, 9: 2, 7: 1}.get(n, 0) for n in range(11)},
        "promoters": 3,
        "passives": 1,
        "detractors": 0,
    }


def test_an_erased_contact_keeps_the_figures_without_the_person(surveyed):
    campaign, contact, dispatch, links = surveyed()
    post(links[6], score="6", comment="My name is Ada")
    from contacts.services import contact_erase

    contact_erase(contact=contact, requested_by="test")
    response = SurveyResponse.objects.get()
    assert (response.contact, response.comment, response.email, response.score) == (None, "", "", 6)
    assert SurveyDispatch.objects.get().event == {}
    assert figures(campaign).distribution == {6: 1}
    assert not Contact.objects.filter(pk=contact.pk).exists()
