"""Contacts benchmark: drain apply rate, import_segment of a big file, the admin changelist.

    .venv/bin/python bench/contacts.py [--messages 20000] [--import-lines 1000000] ...

On PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/switchyard_bench,
created and migrated when missing; its inbox and contacts are emptied first). It measures:

  (a) identify and track messages applied per second by the drain: a mixed stream, 30% of it
      for new contacts, 10 traits or properties a message, over contacts bulk-inserted first;
  (b) `manage.py import_segment` of N JSON lines (default 1,000,000) in a child process: the
      time, and its peak memory (ru_maxrss), also at N/10 to show that memory stays flat;
  (c) the admin contacts changelist at 1,000,000 contacts: median of several GETs by a
      logged-in superuser (plain list, search by email, a filter).

The figures are printed against the targets; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ROOT, Report, bench_env, drain, event_properties, machine_line, setup_django, truncate  # noqa: E402

TARGET_APPLY = 3_000  # messages/s
TARGET_IMPORT_S = 300  # 1M lines
TARGET_ADMIN_MS = 300

PLANS = ["free", "starter", "pro", "business", "enterprise"]


def traits(n: int, rng: random.Random) -> dict:
    """Ten traits: a mix of text, number, boolean and date."""
    return {
        "plan": rng.choice(PLANS),
        "seats": rng.randrange(1, 200),
        "company": f"Company {n % 997}",
        "title": rng.choice(["Engineer", "Manager", "Founder"]),
        "country": rng.choice(["US", "FR", "DE", "JP"]),
        "trial": rng.random() < 0.3,
        "score": rng.randrange(0, 1000),
        "signup_date": f"2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 28):02d}",
        "referrer": rng.choice(["google", "friend", "ad", "blog"]),
        "logins": rng.randrange(0, 500),
    }


def mixed_messages(tag: str, count: int, *, existing: int, rng: random.Random):
    """Half identify, half track; 30% of them name a contact that does not exist yet."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    new_pool = max(1, int(count * 0.3 / 2))  # new people appear about twice each
    for n in range(count):
        if rng.random() < 0.3:
            user = f"new-{tag}-{rng.randrange(new_pool)}"
        else:
            user = f"bench-{rng.randrange(1, existing + 1)}"
        base = {
            "messageId": f"{tag}-{n}",
            "userId": user,
            "timestamp": (start + timedelta(milliseconds=n)).isoformat().replace("+00:00", "Z"),
            "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
        }
        if n % 2 == 0:
            yield {**base, "type": "identify", "traits": {"email": f"{user}@example.com", **traits(n, rng)}}
        else:
            yield {**base, "type": "track", "event": "Order Completed", "properties": event_properties(n, rng)}


# --- contacts in bulk -----------------------------------------------------------------------
def populate_contacts(total: int) -> float:
    """Bring the bench contacts up to `total` with INSERT … SELECT generate_series (one statement
    per 100,000). Columns come from the model, so a new field with a default needs no change here."""
    import json

    from django.db import connection, models

    from contacts.models import Contact

    have = Contact.objects.count()
    if have >= total:
        return 0.0
    columns, expressions, params = [], [], []
    known = {
        "user_id": "'bench-' || g",
        "email": "'bench-' || g || '@example.com'",
        "first_name": "'Ada'",
        "last_name": "'Bench' || (g %% 1000)",
        "subscribed": "(g %% 10 <> 0)",
        "properties": (
            "jsonb_build_object('plan', (ARRAY['free','starter','pro','business','enterprise'])[1 + g %% 5], "
            "'seats', g %% 200, 'company', 'Company ' || (g %% 997), 'title', 'Engineer', 'country', 'US', "
            "'trial', (g %% 3 = 0), 'score', g %% 1000, 'signup_date', '2024-05-01', 'referrer', 'google', "
            "'logins', g %% 500)"
        ),
        "created_at": "now() - make_interval(secs => g)",
        "updated_at": "now() - make_interval(secs => g)",
        "last_seen_at": "now() - make_interval(secs => g)",
    }
    for field in Contact._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.name in known or field.column in known:
            expressions.append(known.get(field.name) or known[field.column])
        elif field.null:
            expressions.append("NULL")
        elif isinstance(field, models.JSONField):
            expressions.append("%s::jsonb")
            params.append(json.dumps(field.get_default()))
        else:
            expressions.append("%s")
            params.append(field.get_db_prep_save(field.get_default(), connection))
    table = connection.ops.quote_name(Contact._meta.db_table)
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(expressions)} FROM generate_series(%s, %s) AS g"
    )
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for first in range(have + 1, total + 1, 100_000):
            last = min(total, first + 99_999)
            cursor.execute(sql, [*params, first, last])
            print(f"    contacts {last:,} / {total:,}", flush=True)
        cursor.execute(f"ANALYZE {table}")
    return time.perf_counter() - started


def inbox_fill(integration, messages) -> int:
    from django.db import transaction
    from django.utils import timezone

    from integrations.inbound.spec import normalize
    from integrations.inbound.store import inbox_insert

    received = timezone.now()
    stored, chunk = 0, []
    with transaction.atomic():
        for message in messages:
            chunk.append(normalize(message, path_type=None, received_at=received))
            if len(chunk) == 1000:
                stored += len(inbox_insert(integration=integration, rows=chunk, received_at=received))
                chunk = []
        stored += len(inbox_insert(integration=integration, rows=chunk, received_at=received))
    return stored


# --- (a) drain apply rate ---------------------------------------------------------------------
def backend_cpu() -> float:
    """CPU seconds this process's PostgreSQL backend has used (same machine: /proc)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_apply(report: Report, *, messages: int, existing: int, chunk: int | None, profile: str | None) -> None:
    from contacts.models import Contact, ContactEvent
    from integrations.services import integration_create

    print(f"(a) drain apply: {existing:,} existing contacts, {messages:,} mixed messages…", flush=True)
    populate_contacts(existing)
    integration, _ = integration_create(kind="segment", name="bench contacts apply")
    stored = inbox_fill(
        integration, mixed_messages(f"a{int(time.time())}", messages, existing=existing, rng=random.Random(3))
    )
    before = Contact.objects.count()
    backend_before = backend_cpu()
    cpu_before = time.process_time()
    started = time.perf_counter()
    result = drain(profile, max_seconds=3600, chunk=chunk)
    elapsed = time.perf_counter() - started
    python_ms = (time.process_time() - cpu_before) * 1000
    postgres_ms = (backend_cpu() - backend_before) * 1000
    rate = result.total / elapsed
    # CPU per 1,000 messages is steadier than the rate on a shared machine: compare these.
    report.add(
        "drain CPU per 1,000 messages",
        f"{python_ms / result.total * 1000:.0f} ms Python + {postgres_ms / result.total * 1000:.0f} ms PostgreSQL",
    )
    report.add(
        "identify+track applied/s (drain)",
        f"{rate:,.0f} ({result.processed:,} processed, {result.skipped:,} skipped, {result.failed:,} failed of "
        f"{stored:,}; {Contact.objects.count() - before:,} contacts created, "
        f"{ContactEvent.objects.count():,} events; {elapsed:.1f} s)",
        f"≥ {TARGET_APPLY:,}",
        rate >= TARGET_APPLY and result.failed == 0,
    )


# --- (b) import_segment -----------------------------------------------------------------------
def write_jsonl(path: Path, lines: int, tag: str) -> None:
    import orjson

    rng = random.Random(5)
    with open(path, "wb", buffering=1 << 20) as out:
        for message in mixed_messages(tag, lines, existing=1_000_000, rng=rng):
            out.write(orjson.dumps(message))
            out.write(b"\n")


def run_import(path: Path, integration_id: int) -> tuple[float, int, str]:
    """Time `manage.py import_segment` in a child; return (seconds, peak RSS in KiB, summary)."""
    command = [
        sys.executable,
        "manage.py",
        "import_segment",
        str(path),
        "--integration",
        str(integration_id),
        "--no-progress",
    ]
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, env=bench_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Read before waiting, so a chatty child never blocks on a full pipe.
    out, err = proc.stdout.read(), proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"import_segment failed ({proc.returncode}): {err.decode()[-2000:]}")
    summary = out.decode().strip().splitlines()[-1]
    return elapsed, usage.ru_maxrss, summary


def bench_import(report: Report, *, lines: int, workdir: Path) -> None:
    from integrations.models import InboxMessage
    from integrations.services import integration_create

    integration, _ = integration_create(kind="segment", name="bench contacts import")
    tag = f"i{int(time.time())}"
    small_lines = max(1, lines // 10)
    small, big = workdir / "small.jsonl", workdir / "big.jsonl"
    print(f"(b) import_segment: writing {small_lines:,} and {lines:,} lines…", flush=True)
    write_jsonl(small, small_lines, tag + "s")
    write_jsonl(big, lines, tag)
    size_mb = big.stat().st_size / 2**20
    seconds_small, rss_small, _ = run_import(small, integration.pk)
    print(f"    {small_lines:,} lines: {seconds_small:.1f} s, peak RSS {rss_small / 1024:.0f} MiB", flush=True)
    seconds, rss, summary = run_import(big, integration.pk)
    report.add(
        f"import_segment {lines:,} lines ({size_mb:,.0f} MiB)",
        f"{seconds:.1f} s = {lines / seconds:,.0f} lines/s [{summary}]",
        f"< {TARGET_IMPORT_S} s at 1,000,000 lines",
        seconds * (1_000_000 / lines) < TARGET_IMPORT_S,
    )
    report.add(
        "import_segment peak memory (ru_maxrss)",
        f"{rss / 1024:.0f} MiB at {lines:,} lines; {rss_small / 1024:.0f} MiB at {small_lines:,}",
    )
    truncate(InboxMessage)  # the imported rows are not drained here


# --- (c) admin changelist -----------------------------------------------------------------------
def bench_admin(report: Report, *, contacts: int, repeats: int) -> None:
    from django.contrib import admin
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from contacts.models import Contact

    print(f"(c) admin changelist at {contacts:,} contacts…", flush=True)
    if not admin.site.is_registered(Contact):
        report.add("admin contacts changelist", "SKIPPED: contacts.Contact is not registered in the admin yet")
        return
    seconds = populate_contacts(contacts)
    if seconds:
        print(f"    populated in {seconds:.0f} s", flush=True)
    User = get_user_model()
    user = User.objects.filter(username="bench-admin").first() or User.objects.create_superuser(
        "bench-admin", "bench-admin@example.com", "bench-password-123"
    )
    client = Client()
    client.force_login(user)
    total = Contact.objects.count()
    probe = Contact.objects.order_by("pk").values_list("email", flat=True)[total // 2] or "bench-1@example.com"
    views = [
        ("changelist", "/admin/contacts/contact/"),
        ("changelist search by email", f"/admin/contacts/contact/?q={probe}"),
        ("changelist subscribed=no", "/admin/contacts/contact/?subscribed__exact=0"),
        ("changelist page 50", "/admin/contacts/contact/?p=50"),
    ]
    for name, url in views:
        response = client.get(url, secure=True)
        if response.status_code != 200:
            report.add(f"admin {name}", f"SKIPPED: GET {url} answered {response.status_code}")
            continue
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            client.get(url, secure=True)
            times.append((time.perf_counter() - started) * 1000)
        with CaptureQueriesContext(connection) as queries:
            client.get(url, secure=True)
        slowest = max(queries.captured_queries, key=lambda q: float(q["time"]), default=None)
        detail = f"{len(queries.captured_queries)} queries"
        if slowest is not None:
            detail += f", slowest {float(slowest['time']) * 1000:.0f} ms: {slowest['sql'][:160]}"
        report.add(
            f"admin {name} (median of {repeats})",
            f"{statistics.median(times):.0f} ms (min {min(times):.0f}, max {max(times):.0f})",
            f"< {TARGET_ADMIN_MS} ms",
            statistics.median(times) < TARGET_ADMIN_MS,
            detail=detail,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20000, help="messages drained in (a) (default 20000)")
    parser.add_argument("--existing", type=int, default=20000, help="contacts existing before (a) (default 20000)")
    parser.add_argument("--chunk", type=int, default=None, help="drain chunk size (default: INBOX_DRAIN_CHUNK)")
    parser.add_argument("--import-lines", type=int, default=1_000_000, help="lines imported in (b) (default 1000000)")
    parser.add_argument("--admin-contacts", type=int, default=1_000_000, help="contacts for (c) (default 1000000)")
    parser.add_argument("--repeats", type=int, default=7, help="GETs timed per admin page (default 7)")
    parser.add_argument("--skip", default="", help="parts to skip: comma-separated of apply,import,admin")
    parser.add_argument(
        "--profile", default=None, help="write a CPU profile of the drain in (a) to this file (or set BENCH_PROFILE)"
    )
    parser.add_argument("--workdir", default=None, help="where the import files go (default: a temporary folder)")
    args = parser.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}

    setup_django()
    from django.apps import apps

    from integrations.models import DailyUsage, InboxMessage, Integration, RejectedMessage

    contact_models = list(apps.get_app_config("contacts").get_models())
    truncate(InboxMessage, RejectedMessage, DailyUsage, *contact_models)
    Integration.objects.filter(name__startswith="bench contacts").delete()
    machine = machine_line()
    print(machine, flush=True)
    report = Report("bench/contacts.py")

    if "apply" not in skip:
        bench_apply(report, messages=args.messages, existing=args.existing, chunk=args.chunk, profile=args.profile)
    if "import" not in skip:
        with tempfile.TemporaryDirectory(dir=args.workdir, prefix="switchyard-bench-") as workdir:
            bench_import(report, lines=args.import_lines, workdir=Path(workdir))
    if "admin" not in skip:
        bench_admin(report, contacts=args.admin_contacts, repeats=args.repeats)
    report.print(machine)


if __name__ == "__main__":
    main()
