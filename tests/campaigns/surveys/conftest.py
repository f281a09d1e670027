"""Survey fixtures: a survey template with logo and scale, campaigns, tracks and identifies
through the real inbound endpoint and drain, a run of due work, and a local HTTP receiver
for webhook and Slack calls.

The clock is tests/campaigns/conftest.py's `frozen` (common.clock pinned; `advance(seconds)`).
Email goes to Django's locmem outbox unless a test asks for `use_smtp`.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail

from campaigns.email.models import EmailSend
from campaigns.email.services import email_template_save
from campaigns.surveys.models import Campaign, CampaignReminder, SurveyDispatch
from campaigns.surveys.services import campaign_activate
from common import clock
from common.workqueue import run_due
from contacts.models import Contact
from tests.conftest import SegmentClient, make_integration

SURVEY_HTML = (
    "<p>Hi {{ contact.first_name }}, {{ event.survey.question }}</p>{{ event.survey.scale_html|safe }}"
    "<p>About order {{ event.properties.order_id }}.</p>"
)
LOGO = "https://cdn.example.com/acme-logo.png"
LOGO_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="160" height="40"><rect width="160" height="40" rx="6" '
    'fill="#4f46e5"/><text x="80" y="27" font-family="Arial" font-size="20" fill="#fff" text-anchor="middle">'
    "ACME</text></svg>"
)


@pytest.fixture(autouse=True)
def _local_receivers(settings):
    """Webhook and Slack calls go to a server on 127.0.0.1 in these tests."""
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    settings.SITE_URL = "https://surveys.example.com"


_n = iter(range(1, 1_000_000))


def survey_template(*, name: str = "", logo_url: str = LOGO, html: str = SURVEY_HTML, **fields):
    return email_template_save(
        name=name or f"survey template {next(_n)}",
        subject=fields.pop("subject", "{{ event.survey.question }}"),
        html=html,
        text=fields.pop("text", ""),
        transactional=fields.pop("transactional", False),
        logo_url=logo_url,
    )


def make_campaign(*, activate: bool = True, reminders=(), **fields) -> Campaign:
    """A live NPS campaign on "Order Completed" (fields override); reminders: (minutes, template)."""
    fields.setdefault("name", f"Post-purchase NPS {next(_n)}")
    fields.setdefault("trigger_events", ["Order Completed"])
    fields.setdefault("question", "How likely are you to recommend Acme?")
    if "template" not in fields:
        fields["template"] = survey_template()
    delay = fields.pop("delay_minutes", 0)
    campaign = Campaign.objects.create(delay_value=delay, delay_unit="minutes", **fields)
    for position, (minutes, template) in enumerate(reminders, start=1):
        CampaignReminder.objects.create(
            campaign=campaign, position=position, delay_value=minutes, delay_unit="minutes", template=template
        )
    if activate:
        campaign = campaign_activate(campaign=campaign)
    return campaign


@pytest.fixture
def inbound(db):
    """A Segment integration: `send(path, body)` posts, `drain()` applies."""
    from integrations.drain import drain_inbox

    integration, key = make_integration("segment")

    class Inbound:
        def __init__(self) -> None:
            self.integration = integration
            self.client = SegmentClient(key)

        def post(self, path: str, body: dict) -> None:
            response = self.client.post(path, body)
            assert response.status_code == 200, response.content

        def identify(self, user_id: str, **traits) -> Contact:
            traits.setdefault("email", f"{user_id}@example.com")
            traits.setdefault("firstName", "Ada")
            self.post("/v1/identify", {"userId": user_id, "traits": traits, "timestamp": clock.now().isoformat()})
            drain_inbox(max_seconds=30)
            return Contact.objects.get(user_id=user_id)

        def track(self, event: str = "Order Completed", *, user_id: str = "u1", when=None, **body):
            stamp = (when or clock.now()).isoformat()
            payload = {"userId": user_id, "event": event, "properties": body.pop("properties", {}), **body}
            payload["timestamp"] = stamp
            payload.setdefault("messageId", f"{event}-{user_id}-{stamp}")
            self.post("/v1/track", payload)
            return drain_inbox(max_seconds=30)

    return Inbound()


def run_work(*types: str):
    return run_due(types=list(types or ["survey_dispatch", "email_send", "surveys", "webhook"]), max_seconds=30)


def dispatches(**filters) -> list[SurveyDispatch]:
    return list(SurveyDispatch.objects.filter(**filters).order_by("pk"))


def survey_sends(**filters) -> list[EmailSend]:
    return list(EmailSend.objects.filter(purpose="survey", **filters).order_by("pk"))


def outbox() -> list:
    return list(mail.outbox)


# --- a local HTTP receiver ----------------------------------------------------------------------
@dataclass
class Call:
    path: str
    headers: dict
    body: bytes

    @property
    def json(self):
        return json.loads(self.body)


@dataclass
class Receiver:
    calls: list[Call] = field(default_factory=list)
    answers: list[tuple[int, dict]] = field(default_factory=list)  # (status, headers), used in order
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def answer_next(self, status: int, headers: dict | None = None) -> None:
        with self.lock:
            self.answers.append((status, headers or {}))

    def received(self, path: str = "") -> list[Call]:
        with self.lock:
            return [c for c in self.calls if not path or urlsplit(c.path).path == path]


@pytest.fixture
def receiver():
    """An HTTP server on 127.0.0.1 that records every POST and answers 200 (or what it is told)."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's hook name
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with state.lock:
                state.calls.append(Call(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status, headers = state.answers.pop(0) if state.answers else (200, {})
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok")

        def do_GET(self):  # noqa: N802 - a logo for the survey pages
            body = LOGO_SVG.encode()
            self.send_response(200)
            self.send_header("Content-Type", "image/svg+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def score_links(html: str) -> dict[int, str]:
    """{score: URL} of a survey email's links."""
    import re

    links = {}
    for url in re.findall(r'href="([^"]+score=\d+)"', html):
        url = url.replace("&amp;", "&")
        links[int(parse_qs(urlsplit(url).query)["score"][0])] = url
    return links
