"""What a user feels: ingest and apply at the same time, on the same machine, for a minute.

gunicorn takes Segment batches from client processes sending a realistic mix (identify and
track, 10 traits or properties each, returning and new users) at an offered rate, while a
real django-q2 cluster drains the inbox into contacts, all against one PostgreSQL. It prints:

- the messages applied per second, sustained, while the clients send;
- the receipt-to-applied latency p50/p99 (the row's received_at to its processed_at);
- the backlog when the clients stop, and how long the cluster then takes to clear it.

    .venv/bin/python bench/e2e.py [--seconds 60] [--rate 6000] [--clients 4] [--q-workers 2]

Runs on PostgreSQL only (DATABASE_URL, default the bench database; its tables are emptied).
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, Report, bench_env, machine_line, setup_django, truncate  # noqa: E402
from ingest import LeanConnection, free_port, make_message, start_gunicorn, stop  # noqa: E402

TARGET_APPLIED = 5_000  # messages/s, sustained
TARGET_P99_S = 2.0


def _sender(index, port, auth, seconds, rate, users, barrier, results):  # runs in a child process
    """Send batches of 50–100 messages at `rate` messages/s for `seconds`; closed loop when behind."""
    import orjson

    rng = random.Random(1000 + index)
    conn = LeanConnection(port)
    sent = errors = 0
    n = index * 10_000_000
    barrier.wait()
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        # Pace to the offered rate: sleep while ahead of it, send back to back when behind.
        ahead = sent / rate - elapsed
        if ahead > 0:
            time.sleep(min(ahead, 0.05))
            continue
        size = rng.randrange(50, 101)
        messages = [make_message(f"e2e{index}", n + i, users=users, rng=rng) for i in range(size)]
        n += size
        body = orjson.dumps({"batch": messages})
        head = (
            f"POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: {auth}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        try:
            if conn.request(head.encode() + body) != 200:
                errors += 1
            else:
                sent += size
        except OSError:
            errors += 1
            conn.close()
    conn.close()
    results.put((sent, errors))


def start_cluster(workers: int, broker: str) -> subprocess.Popen:
    env = {**bench_env(), "Q_WORKERS": str(workers), "Q_BROKER": broker}
    manage = ROOT / "manage.py"
    proc = subprocess.Popen(
        [sys.executable, str(manage), "qcluster"], cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL
    )
    time.sleep(3)  # the cluster's workers fork and connect
    if proc.poll() is not None:
        sys.exit(f"qcluster exited with {proc.returncode}")
    print(f"django-q2 cluster up: {workers} workers, broker {broker}", flush=True)
    return proc


def stop_cluster(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)  # qcluster stops quickly on SIGINT
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def latency_figures(since, until) -> tuple[float, float, int]:
    """p50 and p99 of processed_at - received_at, in seconds, for rows received in the window."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d), percentile_cont(0.99) WITHIN GROUP (ORDER BY d),
                   count(*)
            FROM (SELECT extract(epoch FROM processed_at - received_at) AS d
                  FROM integrations_inboxmessage
                  WHERE received_at >= %s AND received_at < %s AND processed_at IS NOT NULL) AS t
            """,
            [since, until],
        )
        p50, p99, count = cursor.fetchone()
    return float(p50 or 0), float(p99 or 0), int(count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60, help="how long the clients send (default 60)")
    parser.add_argument("--rate", type=int, default=6000, help="offered messages a second, all clients (6000)")
    parser.add_argument("--clients", type=int, default=4, help="client processes (default 4)")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--q-workers", type=int, default=2, help="django-q2 cluster workers (default 2)")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/7", help="Q_BROKER for the cluster")
    parser.add_argument("--users", type=int, default=50_000, help="distinct users in the traffic (default 50000)")
    args = parser.parse_args()

    setup_django()
    os.environ["Q_BROKER"] = args.broker  # the web processes queue drains on the same broker
    from django.utils import timezone

    from contacts.models import Contact, ContactEvent, ContactIdentity, PropertyDefinition
    from integrations.models import DailyUsage, InboxMessage, RejectedMessage
    from integrations.services import integration_create

    truncate(InboxMessage, RejectedMessage, DailyUsage, ContactEvent, ContactIdentity, Contact, PropertyDefinition)
    _integration, key = integration_create(kind="segment", name="e2e bench")
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    report = Report("end to end: ingest and apply together")

    port = free_port()
    os.environ["Q_BROKER"] = args.broker
    web = start_gunicorn(port, args.web_workers, ["-k", "gthread", "--threads", "4"])
    cluster = start_cluster(args.q_workers, args.broker)
    try:
        ctx = multiprocessing.get_context("fork")
        barrier = ctx.Barrier(args.clients + 1)
        results = ctx.Queue()
        per_client = args.rate / args.clients
        procs = [
            ctx.Process(target=_sender, args=(i, port, auth, args.seconds, per_client, args.users, barrier, results))
            for i in range(args.clients)
        ]
        for proc in procs:
            proc.start()
        barrier.wait()
        started = timezone.now()
        t0 = time.monotonic()
        outcomes = [results.get() for _ in procs]
        for proc in procs:
            proc.join()
        window = time.monotonic() - t0
        ended = timezone.now()
        sent = sum(o[0] for o in outcomes)
        errors = sum(o[1] for o in outcomes)
        final = ["processed", "skipped", "waiting", "refused", "failed"]
        applied_in_window = InboxMessage.objects.filter(
            processed_at__gte=started, processed_at__lt=ended, status__in=final
        ).count()
        backlog = InboxMessage.objects.filter(status__in=["pending", "processing"]).count()
        # Then let the cluster clear what is left.
        clear_started = time.monotonic()
        while InboxMessage.objects.filter(status__in=["pending", "processing"]).exists():
            if time.monotonic() - clear_started > 600:
                break
            time.sleep(0.5)
        clear_seconds = time.monotonic() - clear_started
        p50, p99, measured = latency_figures(started, ended)
        report.add("offered", f"{args.rate:,} msg/s from {args.clients} clients, batches of 50-100")
        report.add(
            "sent and stored", f"{sent:,} messages in {window:.1f} s = {sent / window:,.0f} msg/s, {errors} errors"
        )
        rate = applied_in_window / window
        report.add(
            "applied while sending", f"{rate:,.0f} msg/s", f">= {TARGET_APPLIED:,} msg/s", rate >= TARGET_APPLIED
        )
        report.add("receipt-to-applied p50", f"{p50:.2f} s")
        report.add("receipt-to-applied p99", f"{p99:.2f} s", f"< {TARGET_P99_S:g} s", p99 < TARGET_P99_S)
        report.add(
            "backlog when the clients stopped", f"{backlog:,} messages", detail=f"cleared in {clear_seconds:.1f} s"
        )
        statuses = dict(
            InboxMessage.objects.values_list("status").annotate(n=__import__("django").db.models.Count("id"))
        )
        report.add(
            "rows by status", ", ".join(f"{k} {v:,}" for k, v in sorted(statuses.items())), detail=f"{measured:,} timed"
        )
    finally:
        stop(web)
        stop_cluster(cluster)
    report.print(machine_line() + f"; gunicorn {args.web_workers} gthread workers, qcluster {args.q_workers} workers")


if __name__ == "__main__":
    main()
