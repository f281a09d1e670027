"""Outbound benchmark: 100,000 stored contacts delivered to a Segment-compatible collector.

    .venv/bin/python bench/outbound.py [--contacts 100000] [--workers 2]

On PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/switchyard_bench,
created and migrated when missing); the contact, visitor and outbox tables are emptied first.

The collector is the project's own (`manage.py segment_collector`), in a process of its own,
checking auth, gzip, the limits and every message's shape, and counting what it accepts.
The contacts are stored as captured ones (a contact and the visitor it came from, landing
page and referrer included), set up before any clock runs.

Switchyard: from `sync_segment` (queue every contact in bulk, then the workers send them)
until the collector has every Grow identify. `--workers N` adds N-1 worker processes beside it
(2 in all by default: a cluster's default `Q_WORKERS`; `--workers 1` measures one alone). Every message is a durable outbox row: its state, its attempt log and its sync run
are written as it goes, so a crash loses nothing and a retry cannot duplicate.

Baseline: what a user would otherwise write, timed in the same run: read the same contacts with
the ORM and send them with segment-analytics-python (its defaults, but a queue large enough
that nothing is dropped), until the collector has them all. It keeps no state: a crash
mid-run leaves no record of what was sent.

The target is Switchyard at least 2x faster. The figures are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ROOT, Report, bench_env, free_port, machine_line, setup_django, truncate  # noqa: E402

WRITE_KEY = "bench-write-key"


def start_collector(port: int) -> subprocess.Popen:
    import requests

    process = subprocess.Popen(
        [sys.executable, "manage.py", "segment_collector", "--port", str(port), "--quiet", "--write-key", WRITE_KEY],
        cwd=ROOT,
        env=bench_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    for _ in range(300):
        try:
            requests.get(f"http://127.0.0.1:{port}/__collector/stats", timeout=1)
            return process
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError("the collector did not start")


def stats(url: str) -> dict:
    import requests

    return requests.get(f"{url}/__collector/stats", timeout=30).json()


def wait_until(url: str, unique: int, *, seconds: float = 3600) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        got = stats(url)
        if got["unique"] >= unique or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def store_contacts(integration, count: int) -> None:
    """Captured contacts, stored in bulk: each a contact and the visitor it came from."""
    from common import clock
    from common.bulk import bulk_insert
    from contacts.models import Contact
    from integrations.capture.models import Visitor

    now = clock.now()
    chunk = 10_000
    for start in range(0, count, chunk):
        contacts = [
            Contact(
                email=f"person{n}@example{n % 50}.com",
                first_name=f"First{n}",
                last_name=f"Last{n}",
                source=integration,
                created_at=now,
                updated_at=now,
                subscription_reason="created",
            )
            for n in range(start, min(start + chunk, count))
        ]
        bulk_insert(Contact, contacts)
        bulk_insert(
            Visitor,
            [
                Visitor(
                    integration=integration,
                    anonymous_id=f"bench-visitor-{c.pk}",
                    contact_id=c.pk,
                    email=c.email,
                    first_seen_at=now - timedelta(minutes=20),
                    last_seen_at=now - timedelta(minutes=5),
                    landing_page_url=f"https://shop.example/landing/{c.pk % 100}?utm_source=ads",
                    landing_page_domain="shop.example",
                    referrer="https://search.example/?q=sprinkles",
                    page_title="Spring sale",
                    identified_at=now - timedelta(minutes=5),
                    created_at=now,
                )
                for c in contacts
            ],
        )


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def run_switchyard(integration, url: str, count: int, workers: int) -> tuple[float, dict]:
    """sync_segment in this process (plus workers-1 process_due loops), until all arrived."""
    from django.core.management import call_command

    helpers = []
    env = {**bench_env(), "OUTBOUND_KICK_RETRIES": "false"}
    for _ in range(workers - 1):
        script = (
            "import django,time;django.setup();"
            "from common.workqueue import run_due;"
            "from integrations.outbound.models import OutboxItem;"
            "time.sleep(0.5)\n"
            "while True:\n"
            " r=run_due(types=['segment_outbox'],max_seconds=30)['segment_outbox']\n"
            " if not any(r.values()): time.sleep(0.05)\n"
        )
        helpers.append(subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env))
    started = time.perf_counter()
    call_command("sync_segment", "--integration", str(integration.pk), stdout=open(os.devnull, "w"))  # noqa: SIM115
    got = wait_until(url, count)
    elapsed = time.perf_counter() - started
    for helper in helpers:
        helper.kill()
        helper.wait()
    return elapsed, got


def run_baseline(integration, url: str, count: int) -> tuple[float, dict]:
    """The script a user would write: the ORM and segment-analytics-python."""
    import hashlib

    import segment.analytics as analytics

    from integrations.capture.models import Visitor

    client = analytics.Client(WRITE_KEY, host=url, max_queue_size=count + 1000)
    started = time.perf_counter()
    visitors = (
        Visitor.objects.filter(integration=integration, contact__isnull=False)
        .select_related("contact")
        .order_by("pk")
        .iterator(chunk_size=2000)
    )
    for visitor in visitors:
        contact = visitor.contact
        address = contact.address or {}
        client.identify(
            anonymous_id=hashlib.md5(contact.email.encode()).hexdigest(),  # noqa: S324
            traits={
                "address_city": address.get("city"),
                "address_line_1": address.get("street"),
                "address_postal": address.get("postal_code"),
                "address_state": address.get("state"),
                "clicked_at": visitor.identified_at.isoformat(),
                "created_at": contact.created_at.isoformat(),
                "email": contact.email,
                "email_domain": contact.email.rpartition("@")[2],
                "extra_data": None,
                "first_name": contact.first_name or None,
                "id": contact.pk,
                "landing_page_domain": visitor.landing_page_domain,
                "landing_page_url": visitor.landing_page_url,
                "last_name": contact.last_name or None,
                "page_title": visitor.page_title,
                "referrer": visitor.referrer,
                "updated_at": contact.updated_at.isoformat(),
            },
            context={"app": {"name": "script", "version": "1.0"}},
            timestamp=visitor.identified_at,
        )
    client.flush()
    got = wait_until(url, count)
    elapsed = time.perf_counter() - started
    client.shutdown()
    return elapsed, got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    os.environ.setdefault("OUTBOUND_KICK_RETRIES", "false")
    setup_django()
    from common.workqueue.models import Attempt
    from contacts.models import Contact, ContactEvent, Suppression
    from integrations.capture.models import Visitor
    from integrations.models import InboxMessage, Integration
    from integrations.outbound.models import OutboxItem, OutboxStatus, SyncRun
    from integrations.services import integration_create

    report = Report(f"outbound: {args.contacts:,} stored contacts to a local Segment-compatible collector")
    print(machine_line(), flush=True)
    truncate(OutboxItem, SyncRun, Visitor, ContactEvent, Contact, Suppression, InboxMessage, Attempt)
    Integration.objects.filter(kind="segment_source").update(enabled=False)
    port = free_port()
    collector = start_collector(port)
    url = f"http://127.0.0.1:{port}"
    try:
        integration, _ = integration_create(
            kind="segment_source",
            name="bench",
            settings={"write_key": WRITE_KEY, "endpoint": url, "grow_enabled": "true", "send_delay_minutes": "0"},
        )
        setup_started = time.perf_counter()
        store_contacts(integration, args.contacts)
        analyze()
        print(
            f"  stored {args.contacts:,} captured contacts in {time.perf_counter() - setup_started:.1f} s", flush=True
        )

        elapsed, got = run_switchyard(integration, url, args.contacts, args.workers)
        sent = OutboxItem.objects.filter(integration=integration, status=OutboxStatus.SENT).count()
        runs = SyncRun.objects.filter(integration=integration, trigger="worker").count()
        fast = args.contacts / elapsed
        report.add(
            "Switchyard (sync_segment, durable)",
            f"{elapsed:.1f} s, {fast:,.0f} contacts/s",
            detail=f"{got['unique']:,} arrived in {got['requests']:,} requests; {sent:,} outbox rows sent, "
            f"{Attempt.objects.count():,} attempts logged, {runs} sync runs; workers: {args.workers}",
        )

        collector.kill()
        collector.wait()
        port = free_port()
        collector = start_collector(port)
        url = f"http://127.0.0.1:{port}"
        base_elapsed, base_got = run_baseline(integration, url, args.contacts)
        slow = args.contacts / base_elapsed
        report.add(
            "ORM + segment-analytics-python (no state)",
            f"{base_elapsed:.1f} s, {slow:,.0f} contacts/s",
            detail=f"{base_got['unique']:,} arrived in {base_got['requests']:,} requests",
        )
        ratio = base_elapsed / elapsed
        report.add("Switchyard speed-up", f"{ratio:.2f}x", target=">= 2x", met=ratio >= 2)
    finally:
        collector.kill()
        collector.wait()
    report.print(machine_line())


if __name__ == "__main__":
    main()
