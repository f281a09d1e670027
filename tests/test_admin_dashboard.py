"""The admin index as a dashboard: the inbox by state, the queue's age, drains, refusals and each
integration's health, each figure linking to the list behind it, at a fixed number of queries."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_q.models import Task

from integrations.health import DRAIN_TASK
from integrations.models import InboxMessage, InboxStatus
from tests.conftest import SegmentClient, make_integration

INDEX = reverse("admin:index")
INBOX = reverse("admin:integrations_inboxmessage_changelist")


@pytest.fixture
def traffic(db):
    web, web_key = make_integration("segment", name="Website", daily_cap=100)
    app, app_key = make_integration("loops", name="Loops app")
    web_client = SegmentClient(web_key)
    for n in range(3):
        web_client.post("/v1/track", {"userId": f"u{n}", "event": "Viewed", "messageId": f"w{n}"})
    web_client.post("/v1/track", b"{broken")
    SegmentClient(app_key).post("/v1/identify", {"userId": "a1", "messageId": "a1", "traits": {"email": "a@x.io"}})
    InboxMessage.objects.filter(message_id="w0").update(status=InboxStatus.FAILED, next_attempt_at=None)
    InboxMessage.objects.filter(message_id="w1").update(status=InboxStatus.WAITING, next_attempt_at=None)
    return {"web": web, "app": app}


def figures(response) -> dict:
    return {s.status: s for s in response.context["statuses"]}


def test_inbox_by_state_over_24_hours_with_links_and_a_chart(staff, traffic):
    InboxMessage.objects.filter(message_id="w2").update(received_at=timezone.now() - timedelta(hours=30))
    response = staff.get(INDEX)
    assert response.status_code == 200
    by_state = figures(response)
    assert int(by_state["pending"].count) == 1  # a1; w2 arrived more than a day ago
    assert int(by_state["failed"].count) == 1 and int(by_state["waiting"].count) == 1
    html = response.content.decode()
    assert unescape(by_state["failed"].url) in unescape(html)
    assert by_state["failed"].url.startswith(f"{INBOX}?status__exact=failed&received_at__gte=")
    # The link opens the list the figure counted.
    listed = staff.get(by_state["failed"].url)
    assert [m.message_id for m in listed.context["cl"].result_list] == ["w0"]
    chart = json.loads(response.context["status_chart"])
    assert dict(zip(chart["labels"], chart["datasets"][0]["data"], strict=True))["Failed"] == 1
    options = json.loads(response.context["status_chart_options"])
    assert options["scales"]["y"]["title"]["display"] and options["scales"]["x"]["title"]["display"]


def test_oldest_pending_last_drain_and_refusals_today(staff, traffic):
    oldest = InboxMessage.objects.get(message_id="a1")
    InboxMessage.objects.filter(pk=oldest.pk).update(received_at=timezone.now() - timedelta(minutes=42))
    response = staff.get(INDEX)
    html = response.content.decode()
    assert "42 minutes" in response.context["oldest_pending_age"]
    assert reverse("admin:integrations_inboxmessage_change", args=[oldest.pk]) in html
    assert 'id="sy-drain">never' in html
    assert int(response.context["rejected_today"]) == 1
    assert staff.get(response.context["rejected_url"]).context["cl"].result_count == 1
    stopped = timezone.now() - timedelta(seconds=90)
    Task.objects.create(id=uuid.uuid4().hex, name="d", func=DRAIN_TASK, started=stopped, stopped=stopped, success=True)
    again = staff.get(INDEX)
    assert again.context["last_drain_age"] == "1 minute"


def test_each_integration_shows_last_received_usage_and_failed_and_waiting_links(staff, traffic):
    response = staff.get(INDEX)
    health = {h.integration.name: h for h in response.context["health"]}
    web, app = health["Website"], health["Loops app"]
    assert web.last_received is not None and web.requests == 4 and web.cap == 100
    assert (int(web.failed), int(web.waiting)) == (1, 1)
    assert (int(app.failed), int(app.waiting)) == (0, 0)
    assert web.rejected == 1
    html = unescape(response.content.decode())
    assert web.failed_url in html and web.waiting_url in html
    assert [m.message_id for m in staff.get(web.waiting_url).context["cl"].result_list] == ["w1"]


def test_counts_past_the_cap_say_so(staff, traffic, monkeypatch):
    from common import admin_tools

    monkeypatch.setattr(admin_tools, "COUNT_CAP", 1)
    InboxMessage.objects.filter(message_id__in=["w2", "a1"]).update(status=InboxStatus.FAILED)
    response = staff.get(INDEX)
    assert str(figures(response)["failed"].count) == "1+"
    health = {h.integration.name: h for h in response.context["health"]}
    assert str(health["Website"].failed).endswith("+")
    assert "1+" in response.content.decode()


def test_the_dashboard_costs_the_same_queries_for_more_rows_and_integrations(staff, traffic):
    staff.get(INDEX)
    with CaptureQueriesContext(connection) as few:
        staff.get(INDEX)
    for n in range(4):
        _, key = make_integration("segment", name=f"More {n}")
        SegmentClient(key).post("/v1/batch", {"batch": [{"type": "track", "userId": "u", "event": "e"}] * 5})
    with CaptureQueriesContext(connection) as many:
        staff.get(INDEX)
    assert len(many) == len(few)
    # No count of a whole table: every COUNT over the inbox or refusals is capped.
    counts = [q["sql"] for q in many if "COUNT(" in q["sql"].upper() and "inbox" in q["sql"].lower()]
    assert counts and all("LIMIT" in sql.upper() for sql in counts)


def test_the_sidebar_badges_failed_messages(staff, traffic):
    html = staff.get(reverse("admin:contacts_contact_changelist")).content.decode()
    assert "Failed messages" in html
    assert f"{INBOX}?status__exact=failed" in unescape(html)


def test_an_empty_install_has_a_dashboard_too(staff, db):
    response = staff.get(INDEX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "No integration yet" in html and 'id="sy-oldest">none' in " ".join(html.split()).replace("> ", ">")


def test_a_quiet_integration_still_shows_when_it_last_received(staff, traffic):
    """Each integration's last message comes from its own index entry, however long ago."""
    quiet, key = make_integration("segment", name="Quiet")
    SegmentClient(key).post("/v1/track", {"userId": "q", "event": "Old", "messageId": "old-1"})
    long_ago = timezone.now() - timedelta(days=20)
    InboxMessage.objects.filter(message_id="old-1").update(received_at=long_ago)
    health = {h.integration.name: h for h in staff.get(INDEX).context["health"]}
    assert health["Quiet"].last_received == long_ago
    assert health["Quiet"].last_received_ago == "20 days ago"
    listed = staff.get(reverse("admin:integrations_integration_changelist")).content.decode()
    assert "20 days ago" in listed
