"""End to end, on a live server with a real django-q2 cluster, a real SMTP server, headless
Chromium and a local HTTP receiver: a Segment track leads to the survey email; a score link
followed in Chromium shows the page and the answer is recorded (the page's script commits it);
a plain HTTP GET of another link records nothing; the comment is saved and the metric moves;
the webhook and the Slack call arrive, signed so that the standardwebhooks verifier accepts.

The web side is pytest-django's live server (this process); the cluster is `manage.py
qcluster` with the production settings, pointed at the same database, at the aiosmtpd server
(EMAIL_URL), at the live server for survey links (SITE_URL), and allowed to call 127.0.0.1
(WEBHOOKS_ALLOW_PRIVATE_URLS). PostgreSQL only: the cluster needs a database it can share.
Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from django.db import connections
from standardwebhooks import Webhook

from campaigns.email.services import email_template_save
from campaigns.notifications.models import NotificationRule
from campaigns.surveys.models import SurveyDispatch, SurveyResponse
from campaigns.surveys.stats import figures
from campaigns.webhooks.models import WebhookSubscription
from tests.campaigns.loops.test_loops_e2e import qcluster, wait_for  # noqa: F401 - the cluster fixture
from tests.campaigns.surveys.conftest import SURVEY_HTML, make_campaign, score_links
from tests.conftest import make_integration

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}

pytestmark = [
    pytest.mark.live,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed at /usr/bin/chromium"),
]


@pytest.fixture
def cluster_env(monkeypatch, receiver, settings, live_server):
    """What the cluster process needs beyond the loops' fixture: calls to 127.0.0.1 allowed."""
    monkeypatch.setenv("WEBHOOKS_ALLOW_PRIVATE_URLS", "true")
    monkeypatch.setenv("SURVEY_LINK_DAYS", "30")
    settings.SITE_URL = live_server.url  # the page's form posts back to the live server


def fresh(query):
    try:
        return query()
    finally:
        connections.close_all()


def test_a_track_surveys_by_email_and_the_browser_answers(
    cluster_env, live_server, smtp_server, receiver, request, monkeypatch
):
    playwright_api = pytest.importorskip("playwright.sync_api")
    cluster = request.getfixturevalue("qcluster")  # after cluster_env has set what it passes on
    _integration, key = make_integration("segment")
    template = email_template_save(
        name="NPS survey",
        subject="{{ contact.first_name }}, how did we do?",
        html=SURVEY_HTML,
        text="",
        transactional=False,
        logo_url=f"{receiver.url}/logo.svg",
    )
    campaign = make_campaign(name="Post-purchase NPS", template=template)
    subscription = WebhookSubscription.objects.create(
        url=f"{receiver.url}/hooks", events=["response.created", "response.updated"]
    )
    NotificationRule.objects.create(
        name="CX", channel="slack", slack_url=f"{receiver.url}/slack", events=["new_response", "comment"]
    )

    session = requests.Session()
    session.auth = (key, "")
    identify = {"userId": "ada-1", "traits": {"email": "ada@example.com", "firstName": "Ada"}, "messageId": "i-1"}
    assert session.post(f"{live_server.url}/v1/identify", json=identify, timeout=10).status_code == 200
    track = {"userId": "ada-1", "event": "Order Completed", "properties": {"order_id": "A-77"}, "messageId": "t-1"}
    assert session.post(f"{live_server.url}/v1/track", json=track, timeout=10).status_code == 200

    [received] = wait_for(lambda: smtp_server.to("ada@example.com"), cluster, "the survey email")
    assert received.header("Subject") == "Ada, how did we do?"
    html = received.part("text/html")
    links = score_links(html)
    assert sorted(links) == list(range(11)) and all(url.startswith(live_server.url) for url in links.values())
    assert "A-77" in html and f"{receiver.url}/logo.svg" in html
    assert fresh(lambda: campaign.__class__.objects.get(pk=campaign.pk).status) == "active"

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.goto(links[9])
        assert page.is_checked("#score-9")
        assert page.locator("img.logo").evaluate("img => img.naturalWidth") > 0
        # Nothing fits sideways off a phone's screen.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        # The page's script commits the score once the page has been seen for a few seconds.
        page.wait_for_selector("#sy-saved:not([hidden])")
        response = fresh(lambda: SurveyResponse.objects.get())
        assert (response.score, response.via, response.comment) == (9, "script", "")
        page.screenshot(path=str(ARTIFACTS / "survey-page-phone.png"), full_page=True)

        # A plain GET of another link (what a mail scanner does) records nothing.
        assert requests.get(links[2], timeout=10).status_code == 200
        assert fresh(lambda: SurveyResponse.objects.get().score) == 9

        page.fill("#comment", "Quick delivery, nice box")
        page.click("#sy-send")
        page.wait_for_selector("#sy-thanks")
        page.screenshot(path=str(ARTIFACTS / "survey-thanks-phone.png"), full_page=True)
        context.close()
        browser.close()

    response = fresh(lambda: SurveyResponse.objects.get())
    assert (response.score, response.comment, response.via) == (9, "Quick delivery, nice box", "form")
    assert fresh(lambda: SurveyDispatch.objects.get().status) == "responded"
    metrics = fresh(lambda: figures(campaign).as_api())
    assert (metrics["responses"], metrics["score"], metrics["promoters"]) == (1, 100.0, 1)

    calls = wait_for(
        lambda: len(receiver.received("/hooks")) >= 2 and receiver.received("/hooks"), cluster, "the webhooks"
    )
    payloads = [Webhook(subscription.secret).verify(call.body, call.headers) for call in calls]
    assert [p["type"] for p in payloads] == ["response.created", "response.updated"]
    assert payloads[1]["data"]["comment"] == "Quick delivery, nice box"
    slack = wait_for(lambda: len(receiver.received("/slack")) >= 2 and receiver.received("/slack"), cluster, "Slack")
    texts = [call.json["text"] for call in slack]
    assert any("answered 9" in text for text in texts) and any("Quick delivery" in text for text in texts)
    time.sleep(1)
    assert len(smtp_server.to("ada@example.com")) == 1
