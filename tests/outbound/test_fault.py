"""Faults: 10,000 contacts sync while the collector fails 30% of calls with 500 or 429, and a
worker is killed (kill -9) mid-sync. Every contact arrives; no messageId arrives twice unless a
retry made it so; the history's counts match; nothing is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.db.models import Sum

from common.workqueue.models import Attempt
from integrations.outbound.models import OutboxItem, OutboxStatus, SyncRun
from integrations.outbound.selectors import sync_summary
from tests.outbound.support import source_integration, store_captured

ROOT = Path(__file__).resolve().parents[2]
CONTACTS = 10_000


def retried_only(collector) -> list[str]:
    """messageIds that arrived more than once although no retry carried them: must be none."""
    receipts = defaultdict(list)
    for request in collector.requests:
        if request.status == 200:
            for message_id in request.message_ids:
                receipts[message_id].append(request.retry_count or 0)
    return [mid for mid, counts in receipts.items() if len(counts) > 1 and not any(counts[1:])]


@pytest.mark.django_db
def test_ten_thousand_contacts_through_a_collector_that_fails_30_percent(collector):
    collector.set(fail_rate=0.3, retry_after=1)
    integration = source_integration(collector.url)
    store_captured(integration, CONTACTS)
    out = StringIO()
    call_command("sync_segment", "--integration", str(integration.pk), stdout=out)

    ids = collector.message_ids()
    assert len(ids) == CONTACTS, out.getvalue()
    assert retried_only(collector) == []
    failed_calls = [r for r in collector.requests if r.status != 200]
    assert failed_calls and {r.status for r in failed_calls} <= {500, 429}
    assert OutboxItem.objects.filter(status=OutboxStatus.SENT).count() == CONTACTS
    # The history's counts match what happened.
    runs = SyncRun.objects.filter(integration=integration, trigger="worker")
    totals = runs.aggregate(sent=Sum("sent"), failed=Sum("failed"), skipped=Sum("skipped"))
    assert totals == {"sent": CONTACTS, "failed": 0, "skipped": 0}
    logged = [r for run in runs for r in run.requests]
    assert len(logged) == len(collector.requests)
    assert sorted(r["status"] for r in logged) == sorted(r.status for r in collector.requests)
    today = sync_summary(integration=integration, days=1)[0]
    assert (today.sent, today.failed, today.queued) == (CONTACTS, 0, 0)
    attempts = Attempt.objects.filter(content_type=ContentType.objects.get_for_model(OutboxItem)).count()
    assert attempts == OutboxItem.objects.aggregate(n=Sum("attempts"))["n"] > CONTACTS
    assert f"{CONTACTS} sent" in out.getvalue()


def database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def start_worker(integration, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": database_url(),
        "WORKQUEUE_LEASE_SECONDS": "3",
        "OUTBOUND_KICK_RETRIES": "false",
        "OUTBOUND_BATCH_SIZE": "500",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "sync_segment", "--integration", str(integration.pk)],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_sync_loses_nothing(collector, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("a worker process needs a shared database (PostgreSQL); SQLite tests run in memory")
    collector.set(fail_rate=0.3, retry_after=1, delay=0.02)
    integration = source_integration(collector.url)
    store_captured(integration, CONTACTS)
    first = start_worker(integration, tmp_path / "first.log")
    try:
        arrived = collector.wait_for(lambda c: len(c.message_ids()) >= CONTACTS // 3, seconds=240)
        assert arrived, (tmp_path / "first.log").read_text()
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert len(collector.message_ids()) < CONTACTS  # killed mid-sync
    time.sleep(3.5)  # the killed worker's lease runs out
    second = start_worker(integration, tmp_path / "second.log")
    try:
        assert second.wait(timeout=600) == 0, (tmp_path / "second.log").read_text()
    finally:
        if second.poll() is None:
            os.killpg(second.pid, signal.SIGKILL)
    assert len(collector.message_ids()) == CONTACTS
    assert retried_only(collector) == []
    assert OutboxItem.objects.filter(status=OutboxStatus.SENT).count() == CONTACTS
    assert not OutboxItem.objects.exclude(status=OutboxStatus.SENT).exists()
