"""Ingestion benchmark: the Segment inbound API under gunicorn, the COPY ceiling, and the drain.

    .venv/bin/python bench/ingest.py [--batch-requests 1000] [--single-requests 5000] ...

On PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/switchyard_bench,
created and migrated when missing; its inbox and contacts are emptied first). It measures:

  (a) messages/s through /v1/batch, 100 messages a request, from concurrent client processes;
  (b) single /v1/track calls/s from concurrent clients, with latency p50/p95/p99;
  (c) the ceiling: the same rows written with psycopg COPY from one process;
  (d) drain throughput: messages/s applied by integrations.drain.drain_inbox.

(a) and (b) also print the CPU the server spent (gunicorn's processes and, when PostgreSQL runs
on this machine, the backends serving them, read from /proc): steadier than throughput when
other work shares the cores. `--origin URL` sends a browser's Origin header (CORS answers).

Clients are separate processes (no GIL sharing with each other) sending pre-encoded HTTP/1.1
requests on loopback with a minimal socket client.
They share the machine's cores with gunicorn and PostgreSQL, as a load generator on the same
box always does. The figures are printed against the targets; nothing is asserted.
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (  # noqa: E402
    ROOT,
    Report,
    bench_env,
    event_properties,
    free_port,
    machine_line,
    percentile,
    setup_django,
    truncate,
)

TARGET_BATCH = 10_000  # messages/s
TARGET_SINGLE = 1_000  # calls/s
TARGET_SINGLE_P99_MS = 50
TARGET_DRAIN = 3_000  # messages/s

PLANS = ["free", "starter", "pro", "business", "enterprise"]


def make_message(tag: str, n: int, *, users: int, rng: random.Random, track_only: bool = False) -> dict:
    """A realistic message: 70% track, 30% identify (or all track), 10 properties or traits each."""
    user = rng.randrange(users)
    now = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=n)
    base = {
        "messageId": f"{tag}-{n}",
        "userId": f"user-{user}",
        "anonymousId": f"anon-{user}",
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "context": {
            "ip": f"10.0.{user % 250}.{n % 250}",
            "library": {"name": "analytics-python", "version": "2.4.0"},
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
        },
    }
    if track_only or rng.random() < 0.7:
        return {
            **base,
            "type": "track",
            "event": rng.choice(["Order Completed", "Product Viewed", "Signed In", "Plan Upgraded"]),
            "properties": event_properties(n, rng),
        }
    return {
        **base,
        "type": "identify",
        "traits": {
            "email": f"user-{user}@example.com",
            "firstName": "Ada",
            "lastName": f"Bench{user}",
            "plan": rng.choice(PLANS),
            "seats": rng.randrange(1, 100),
            "company": f"Company {user % 997}",
            "title": "Engineer",
            "country": rng.choice(["US", "FR", "DE", "JP"]),
            "trial": rng.random() < 0.3,
            "score": rng.randrange(0, 1000),
        },
    }


# --- HTTP load ------------------------------------------------------------------------------
class LeanConnection:
    """A minimal HTTP/1.1 client over one socket: pre-encoded requests, responses read by
    Content-Length. http.client's header building and email-parser responses cost the load
    generator about as much CPU as the server spent, on the same two cores."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None

    def request(self, raw: bytes) -> int:
        """Send one request; return the status. Reconnects when the server closes."""
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(raw)
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection mid-response")
            buffer += chunk
        head, _, body = buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:])}
        length = int(headers.get(b"content-length", b"0"))
        while len(body) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection mid-body")
            body += chunk
        if headers.get(b"connection", b"").lower() == b"close":
            self.close()  # gunicorn's sync workers close after each response
        return status

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _client(index, port, auth, path, bodies_spec, barrier, results, origin=None):  # runs in a child process
    import orjson

    tag, start, count, batch, users = bodies_spec
    # A browser's post (analytics.js on a customer's site) carries its page's Origin.
    origin_header = f"Origin: {origin}\r\n" if origin else ""
    rng = random.Random(index)
    requests = []
    for r in range(count):
        first = start + r * batch
        messages = [
            make_message(tag, first + i, users=users, rng=rng, track_only=path == "/v1/track") for i in range(batch)
        ]
        body = orjson.dumps({"batch": messages} if batch > 1 or path.endswith("batch") else messages[0])
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: {auth}\r\n"
            f"Content-Type: application/json\r\n{origin_header}Content-Length: {len(body)}\r\n\r\n"
        )
        requests.append(head.encode() + body)
    conn = LeanConnection(port)
    latencies, errors = [], 0
    barrier.wait()
    t0 = time.monotonic()
    for raw in requests:
        started = time.perf_counter()
        try:
            if conn.request(raw) != 200:
                errors += 1
        except OSError:
            errors += 1
            conn.close()
        latencies.append(time.perf_counter() - started)
    t1 = time.monotonic()
    conn.close()
    results.put((t0, t1, latencies, errors))


def http_load(*, port, key, path, tag, clients, requests, batch, users, origin=None) -> dict:
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(clients)
    results = ctx.Queue()
    per_client = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]
    procs, start = [], 0
    for i, count in enumerate(per_client):
        spec = (tag, start, count, batch, users)
        start += count * batch
        procs.append(ctx.Process(target=_client, args=(i, port, auth, path, spec, barrier, results, origin)))
    for proc in procs:
        proc.start()
    outcomes = [results.get() for _ in procs]
    for proc in procs:
        proc.join()
    t0 = min(o[0] for o in outcomes)
    t1 = max(o[1] for o in outcomes)
    latencies = [lat for o in outcomes for lat in o[2]]
    errors = sum(o[3] for o in outcomes)
    elapsed = t1 - t0
    return {
        "requests": len(latencies),
        "messages": len(latencies) * batch,
        "errors": errors,
        "seconds": elapsed,
        "requests_per_s": len(latencies) / elapsed,
        "messages_per_s": len(latencies) * batch / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


# --- server CPU -----------------------------------------------------------------------------
# Throughput on a shared two-core box moves with whatever else runs; the CPU the server spent
# on each call (gunicorn's processes and the PostgreSQL backends serving them) hardly does.
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> list[str] | None:
    try:
        # The fields after the command name: state, ppid, …, utime (12th), stime (13th).
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _cpu_seconds(pid: int) -> float:
    fields = _proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS if fields else 0.0


def server_cpu(server: subprocess.Popen) -> dict[tuple[str, int], float]:
    """CPU seconds so far of gunicorn's master and workers, and of this database's backends
    when PostgreSQL runs on this machine."""
    from django.db import connection

    web = [server.pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(int(entry.name))
            if fields and fields[1] == str(server.pid):
                web.append(int(entry.name))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        backends = [row[0] for row in cursor.fetchall()]
    local = [pid for pid in backends if _is_postgres(pid)]
    return {("web", pid): _cpu_seconds(pid) for pid in web} | {("db", pid): _cpu_seconds(pid) for pid in local}


def _is_postgres(pid: int) -> bool:
    try:
        return "postgres" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def cpu_spent(before: dict, after: dict) -> tuple[float, float]:
    """(web, database) CPU seconds between two server_cpu() readings."""
    spent = {"web": 0.0, "db": 0.0}
    for key, seconds in after.items():
        spent[key[0]] += max(0.0, seconds - before.get(key, 0.0))
    return spent["web"], spent["db"]


def start_gunicorn(port: int, workers: int, extra: list[str]) -> subprocess.Popen:
    import http.client  # after bench._common has put bench/email.py behind the standard email package

    gunicorn = Path(sys.executable).parent / "gunicorn"
    command = [str(gunicorn), "config.wsgi", "-w", str(workers), "-b", f"127.0.0.1:{port}", "--log-level", "warning"]
    proc = subprocess.Popen([*command, *extra], cwd=ROOT, env=bench_env(), start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"gunicorn exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            conn.close()
            print(f"gunicorn up on 127.0.0.1:{port} with {workers} workers ({' '.join(command[1:])})", flush=True)
            return proc
        except OSError:
            time.sleep(0.2)
    stop(proc)
    sys.exit("gunicorn did not answer within 30 s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --- COPY ceiling ---------------------------------------------------------------------------
def copy_ceiling(*, integration, rows: int, users: int) -> dict:
    import orjson
    import psycopg
    from django.conf import settings as dj
    from django.utils import timezone

    from integrations.inbound.spec import normalize
    from integrations.inbound.store import INBOX_COLUMNS
    from integrations.lanes import lane_of
    from integrations.models import InboxMessage

    rng = random.Random(7)
    messages = [make_message("copy", n, users=users, rng=rng) for n in range(rows)]
    received = timezone.now()
    t0 = time.perf_counter()
    normalized = [normalize(m, path_type=None, received_at=received) for m in messages]
    normalize_s = time.perf_counter() - t0

    db = dj.DATABASES["default"]
    conninfo = psycopg.conninfo.make_conninfo(
        dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"] or None, host=db["HOST"], port=db["PORT"] or None
    )
    table = InboxMessage._meta.db_table
    t0 = time.perf_counter()
    with psycopg.connect(conninfo) as conn, conn.cursor() as cursor:
        with cursor.copy(f"COPY {table} ({', '.join(INBOX_COLUMNS)}) FROM STDIN") as copy:
            for row in normalized:
                copy.write_row(
                    (
                        integration.pk,
                        row["message_id"],
                        row["type"],
                        row["user_id"],
                        row["anonymous_id"],
                        row["email"],
                        row["event"],
                        orjson.dumps(row["payload"], option=orjson.OPT_NON_STR_KEYS).decode(),
                        row["timestamp"],
                        received,
                        "pending",
                        received,
                        0,
                        "",
                        "[]",
                        lane_of(row["user_id"], row["anonymous_id"]),
                    )
                )
    copy_s = time.perf_counter() - t0
    return {"rows": rows, "copy_per_s": rows / copy_s, "normalize_per_s": rows / normalize_s, "copy_s": copy_s}


# --- drain ----------------------------------------------------------------------------------
def _drainer(max_rows, barrier, results):
    from integrations.drain import drain_inbox

    barrier.wait()
    t0 = time.monotonic()
    result = drain_inbox(max_seconds=600, max_rows=max_rows)
    results.put((t0, time.monotonic(), result.processed, result.skipped, result.failed))


def drain_run(*, rows: int, procs: int) -> dict:
    from django.db import connections

    connections.close_all()
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(procs)
    results = ctx.Queue()
    children = [
        ctx.Process(target=_drainer, args=(rows // procs + (1 if i < rows % procs else 0), barrier, results))
        for i in range(procs)
    ]
    for child in children:
        child.start()
    outcomes = [results.get() for _ in children]
    for child in children:
        child.join()
    elapsed = max(o[1] for o in outcomes) - min(o[0] for o in outcomes)
    processed, skipped, failed = (sum(o[i] for o in outcomes) for i in (2, 3, 4))
    total = processed + skipped + failed
    return {"rows": total, "processed": processed, "skipped": skipped, "failed": failed, "per_s": total / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--gunicorn-arg", action="append", default=[], help="extra gunicorn argument (repeatable)")
    parser.add_argument("--batch-requests", type=int, default=1000, help="/v1/batch requests (default 1000)")
    parser.add_argument("--batch-size", type=int, default=100, help="messages a batch (default 100)")
    parser.add_argument("--batch-clients", type=int, default=8, help="concurrent batch clients (default 8)")
    parser.add_argument("--single-requests", type=int, default=5000, help="/v1/track calls (default 5000)")
    parser.add_argument("--single-clients", type=int, default=8, help="concurrent single clients (default 8)")
    parser.add_argument(
        "--copy-rows", type=int, default=None, help="rows for the COPY ceiling (default: batch messages)"
    )
    parser.add_argument("--drain-rows", type=int, default=20000, help="inbox rows drained per run (default 20000)")
    parser.add_argument("--drain-procs", default="1,2", help="drain processes to try, comma-separated (default 1,2)")
    parser.add_argument("--users", type=int, default=5000, help="distinct userIds in the traffic (default 5000)")
    parser.add_argument(
        "--origin", default=None, help="send this Origin header, as a browser does (default: none, as servers)"
    )
    parser.add_argument("--skip", default="", help="parts to skip: comma-separated of batch,single,copy,drain")
    args = parser.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}

    setup_django()
    from django.apps import apps

    from contacts.models import Contact
    from integrations.models import DailyUsage, InboxMessage, Integration, RejectedMessage
    from integrations.services import integration_create

    contact_models = [m for m in apps.get_app_config("contacts").get_models()]
    truncate(InboxMessage, RejectedMessage, DailyUsage, *contact_models)
    Integration.objects.filter(name__startswith="bench ingest").delete()
    integration, key = integration_create(kind="segment", name="bench ingest")
    copy_integration, _ = integration_create(kind="segment", name="bench ingest (COPY)")
    machine = machine_line()
    print(machine, flush=True)
    report = Report("bench/ingest.py")
    tag = f"b{int(time.time())}"

    port = free_port()
    server = start_gunicorn(port, args.workers, args.gunicorn_arg)
    try:
        # Warm every worker (imports, first connection) before measuring.
        http_load(port=port, key=key, path="/v1/track", tag=f"{tag}w", clients=4, requests=100, batch=1, users=10)
        if "batch" not in skip:
            print(
                f"(a) /v1/batch: {args.batch_requests} requests of {args.batch_size} messages, "
                f"{args.batch_clients} client processes…",
                flush=True,
            )
            cpu_before = server_cpu(server)
            r = http_load(
                port=port,
                key=key,
                path="/v1/batch",
                tag=f"{tag}a",
                clients=args.batch_clients,
                requests=args.batch_requests,
                batch=args.batch_size,
                users=args.users,
                origin=args.origin,
            )
            report.add(
                "batch messages/s",
                f"{r['messages_per_s']:,.0f} ({r['requests_per_s']:,.1f} requests/s, "
                f"p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms, {r['errors']} errors, {r['seconds']:.1f} s)",
                f"≥ {TARGET_BATCH:,}",
                r["messages_per_s"] >= TARGET_BATCH and not r["errors"],
            )
            web, db = cpu_spent(cpu_before, server_cpu(server))
            report.add(
                "batch server CPU per 1,000 messages",
                f"{web * 1e6 / r['messages']:.1f} ms web + {db * 1e6 / r['messages']:.1f} ms PostgreSQL",
            )
        if "single" not in skip:
            print(f"(b) /v1/track: {args.single_requests} calls, {args.single_clients} client processes…", flush=True)
            cpu_before = server_cpu(server)
            r = http_load(
                port=port,
                key=key,
                path="/v1/track",
                tag=f"{tag}b",
                clients=args.single_clients,
                requests=args.single_requests,
                batch=1,
                users=args.users,
                origin=args.origin,
            )
            report.add(
                "single calls/s",
                f"{r['requests_per_s']:,.0f} ({r['errors']} errors, {r['seconds']:.1f} s)",
                f"≥ {TARGET_SINGLE:,}",
                r["requests_per_s"] >= TARGET_SINGLE and not r["errors"],
            )
            report.add(
                "single latency p50/p95/p99",
                f"{r['p50_ms']:.1f} / {r['p95_ms']:.1f} / {r['p99_ms']:.1f} ms",
                f"p99 < {TARGET_SINGLE_P99_MS} ms",
                r["p99_ms"] < TARGET_SINGLE_P99_MS,
            )
            web, db = cpu_spent(cpu_before, server_cpu(server))
            report.add(
                "single server CPU per call",
                f"{web * 1e3 / r['requests']:.2f} ms web + {db * 1e3 / r['requests']:.2f} ms PostgreSQL",
            )
    finally:
        stop(server)

    stored = InboxMessage.objects.filter(integration=integration).count()
    print(f"  inbox rows stored through the API: {stored:,}", flush=True)

    if "copy" not in skip:
        rows = args.copy_rows or (args.batch_requests * args.batch_size)
        print(f"(c) COPY ceiling: {rows:,} rows from one process…", flush=True)
        r = copy_ceiling(integration=copy_integration, rows=rows, users=args.users)
        report.add("COPY rows/s (ceiling)", f"{r['copy_per_s']:,.0f} ({r['copy_s']:.1f} s)")
        report.add("normalize() messages/s, one core", f"{r['normalize_per_s']:,.0f}")

    if "drain" not in skip:
        for procs in [int(p) for p in args.drain_procs.split(",") if p.strip()]:
            pending = InboxMessage.objects.filter(next_attempt_at__isnull=False).count()
            rows = min(args.drain_rows, pending)
            if rows <= 0:
                print("(d) drain: no pending inbox rows left; skipped")
                break
            print(f"(d) drain: {rows:,} rows with {procs} process(es)…", flush=True)
            r = drain_run(rows=rows, procs=procs)
            report.add(
                f"drain messages/s, {procs} process{'es' if procs > 1 else ''}",
                f"{r['per_s']:,.0f} ({r['processed']:,} processed, {r['skipped']:,} skipped, {r['failed']:,} failed)",
                f"≥ {TARGET_DRAIN:,}",
                r["per_s"] >= TARGET_DRAIN,
            )
        print(f"  contacts after the drain: {Contact.objects.count():,}")

    report.print(machine)


if __name__ == "__main__":
    main()
