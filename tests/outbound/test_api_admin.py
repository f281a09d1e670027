"""The staff API (sync runs, sync items, send-test), the admin pages and buttons, the commands."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
import requests
from django.core.management import call_command
from django.urls import reverse

from integrations.models import Integration
from integrations.outbound.models import OutboxItem, OutboxStatus, SyncRun
from tests.outbound.support import WRITE_KEY, capture, drain, event, send, source_integration

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def captured(client, source, n: int = 2) -> None:
    for i in range(n):
        capture(client, source, [event("identify", email=f"person{i}@example.com")], anonymous_id=f"visitor-api{i:03d}")
    drain()


def test_sync_runs_and_items_in_the_api(staff, collector):
    source = source_integration(collector.url)
    captured(staff, source)
    source_integration(collector.url, name="other")
    bad = OutboxItem.objects.first()
    OutboxItem.objects.filter(pk=bad.pk).update(payload={"x": 1})
    collector.set(mode="400")
    send()
    runs = staff.get(f"/api/v1/integrations/{source.pk}/sync-runs/").json()
    assert runs["count"] == 1
    assert set(runs["results"][0]) == {"id", "started_at", "finished_at", "sent", "failed", "skipped", "queued"}
    assert runs["results"][0]["failed"] == 2
    items = staff.get(f"/api/v1/integrations/{source.pk}/sync-items/?status=failed").json()
    assert items["count"] == 2
    row = items["results"][0]
    assert set(row) == {"id", "type", "event", "email", "message_id", "status", "error", "attempts", "sent_at"}
    assert row["status"] == "failed" and row["attempts"] == 1 and "400" in row["error"]
    assert staff.get(f"/api/v1/integrations/{source.pk}/sync-items/?status=sent").json()["count"] == 0


def test_the_api_refuses_bad_filters_and_other_kinds(staff, segment):
    _, inbound = segment
    source = source_integration("http://127.0.0.1:9")
    response = staff.get(f"/api/v1/integrations/{source.pk}/sync-items/?status=lost&run=x")
    assert response.status_code == 400
    assert set(response.json()) == {"status", "run"}
    assert staff.get(f"/api/v1/integrations/{inbound.pk}/sync-runs/").status_code == 404
    assert staff.get("/api/v1/integrations/999999/sync-items/").status_code == 404


def test_the_api_needs_staff(client):
    source = source_integration("http://127.0.0.1:9")
    assert client.get(f"/api/v1/integrations/{source.pk}/sync-runs/").status_code in (401, 403)
    assert client.post(f"/api/v1/integrations/{source.pk}/send-test/").status_code in (401, 403)


def test_send_test_answers_with_the_collectors_status_code(staff, collector):
    source = source_integration(collector.url)
    answer = staff.post(f"/api/v1/integrations/{source.pk}/send-test/").json()
    assert answer["status_code"] == 200 and answer["ok"] is True
    [message] = collector.messages
    assert message["event"] == "Switchyard Test Event" and message["properties"]["test_event"] is True
    assert message["messageId"] == answer["message_id"]
    collector.set(mode="500")
    answer = staff.post(f"/api/v1/integrations/{source.pk}/send-test/").json()
    assert answer["status_code"] == 500 and answer["ok"] is False
    assert SyncRun.objects.filter(integration=source, trigger="test").count() == 2
    # Unreachable: no status code, and the reason.
    source.settings = {**source.settings, "endpoint": "http://127.0.0.1:9"}
    source.save()
    answer = staff.post(f"/api/v1/integrations/{source.pk}/send-test/").json()
    assert answer["status_code"] is None and answer["response"]


def test_the_integration_page_shows_the_summary_snippet_and_outbound_buttons(staff, collector):
    source = source_integration(collector.url)
    captured(staff, source)
    send()
    page = staff.get(reverse("admin:integrations_integration_change", args=[source.pk])).content.decode()
    for text in (
        "Sync Summary",
        "Completions",
        "capture.js",
        source.settings["site_key"],
        "Send test event",
        "Remove integration",
    ):
        assert text in page, text
    assert "Rotate key" not in page
    assert WRITE_KEY not in page  # the Write Key is never shown back


def test_send_test_and_remove_buttons_ask_first_and_say_what_they_did(staff, collector):
    source = source_integration(collector.url, send_delay_minutes=30)
    captured(staff, source)
    url = reverse("admin:integrations_integration_send_test_event", args=[source.pk])
    assert "Send it" in staff.get(url).content.decode()
    assert collector.messages == []
    response = staff.post(url, {"confirm": "yes"}, follow=True)
    assert "answered 200" in response.content.decode()
    url = reverse("admin:integrations_integration_remove_integration", args=[source.pk])
    assert "2 queued message(s) will be cancelled" in staff.get(url).content.decode()
    response = staff.post(url, {"confirm": "yes"}, follow=True)
    assert "2 queued message(s) cancelled" in response.content.decode()
    source.refresh_from_db()
    assert not source.enabled and source.settings["removed_at"]
    assert set(OutboxItem.objects.exclude(source="test").values_list("status", flat=True)) == {OutboxStatus.CANCELLED}
    assert SyncRun.objects.filter(integration=source).exists()  # the history stays
    assert capture(staff, source, [event("page")]).status_code == 401
    answer = staff.post(f"/api/v1/integrations/{source.pk}/send-test/").json()
    assert answer["status_code"] is None and "removed" in answer["response"]
    assert len(collector.messages) == 1  # only the test sent before the removal


def test_outbox_pages_and_replay(staff, collector):
    source = source_integration(collector.url)
    captured(staff, source, 1)
    collector.set(mode="400")
    send()
    item = OutboxItem.objects.get()
    page = staff.get(reverse("admin:integrations_outboxitem_change", args=[item.pk])).content.decode()
    assert "rejected by the endpoint" in page and "told to fail" in page  # the error and Segment's answer
    assert staff.get(reverse("admin:integrations_outboxitem_changelist") + "?q=person0@example.com").status_code == 200
    run = SyncRun.objects.get()
    page = staff.get(reverse("admin:integrations_syncrun_change", args=[run.pk])).content.decode()
    assert "told to fail" in page  # the request's answer in the run's log
    runs = staff.get(reverse("admin:integrations_syncrun_changelist")).content.decode()
    failed_link = (
        reverse("admin:integrations_outboxitem_changelist")
        + f"?integration__id__exact={source.pk}&amp;run__id__exact={run.pk}&amp;status__exact=failed"
    )
    assert failed_link in runs
    listed = staff.get(failed_link.replace("&amp;", "&"))
    assert listed.status_code == 200 and "person0@example.com" in listed.content.decode()
    collector.set(mode="ok")
    url = reverse("admin:integrations_outboxitem_replay_one", args=[item.pk])
    staff.post(url, {"confirm": "yes"})
    send()
    item.refresh_from_db()
    assert item.status == OutboxStatus.SENT


def test_create_integration_prints_the_site_key():
    out = StringIO()
    call_command("create_integration", "--kind", "segment_source", "--name", "R", "--set", "write_key=k", stdout=out)
    printed = json.loads(out.getvalue())
    assert printed["api_key"] is None and printed["site_key"].startswith("sk_")
    assert Integration.objects.get(pk=printed["id"]).settings["site_key"] == printed["site_key"]


def test_settings_are_checked():
    from django.core.management.base import CommandError

    for bad in ("endpoint=ftp://x", "endpoint=https://api.segment.io/v2/track", "allowed_origins=shop.example"):
        with pytest.raises(CommandError):
            call_command(
                "create_integration", "--kind", "segment_source", "--name", "R", "--set", bad, stdout=StringIO()
            )


def test_sync_segment_queues_captured_contacts_and_sends_them(client, collector):
    source = source_integration(collector.url, grow_enabled=False, send_delay_minutes=60)
    captured(client, source, 3)
    assert not OutboxItem.objects.exists()
    source.settings = {**source.settings, "grow_enabled": True}
    source.save()
    out = StringIO()
    call_command("sync_segment", "--integration", str(source.pk), stdout=out)
    assert "queued 3 new messages" in out.getvalue()
    assert "3 sent" in out.getvalue()
    assert len(collector.received(type="identify")) == 3
    out = StringIO()
    call_command("sync_segment", "--integration", str(source.pk), "--since", "2000-01-01", stdout=out)
    assert "queued 0 new messages (3 were already queued or sent)" in out.getvalue()
    assert len(collector.received(type="identify")) == 3


def test_sync_segment_refuses_what_it_cannot_sync(segment):
    from django.core.management.base import CommandError

    _, inbound = segment
    with pytest.raises(CommandError, match="segment_source"):
        call_command("sync_segment", "--integration", str(inbound.pk))
    with pytest.raises(CommandError, match="no integration"):
        call_command("sync_segment", "--integration", "999999")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_collector_command_checks_records_and_prints():
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test"}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "segment_collector", "--port", str(port), "--write-key", "wk"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                requests.get(f"{url}/__collector/received", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        message = {"type": "track", "event": "Viewed Product Reclaim", "anonymousId": "a1", "messageId": "api-1"}
        assert requests.post(f"{url}/v1/batch", json={"batch": [message]}, auth=("wk", "")).status_code == 200
        assert requests.post(f"{url}/v1/batch", json={"batch": [message]}, auth=("nope", "")).status_code == 401
        bad = requests.post(f"{url}/v1/batch", json={"batch": [{**message, "event": ""}]}, auth=("wk", ""))
        assert bad.status_code == 400 and "batch[0].event" in bad.json()["message"]
        requests.post(f"{url}/__collector/mode", json={"mode": "429", "retry_after": 3})
        told = requests.post(f"{url}/v1/batch", json={"batch": [message]}, auth=("wk", ""))
        assert told.status_code == 429 and told.headers["Retry-After"] == "3"
        received = requests.get(f"{url}/__collector/received").json()
        assert [m["messageId"] for m in received["messages"]] == ["api-1"]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        output = process.communicate(timeout=20)[0]
    assert "Viewed Product Reclaim" in output and "api-1" in output
