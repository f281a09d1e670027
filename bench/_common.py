"""Shared set-up for the benchmarks: environment, the bench database, the machine line, reports.

The benchmarks run on PostgreSQL only. DATABASE_URL defaults to a database of their own,
created and migrated when missing; they empty the tables they fill, so never point them at a
database whose data you want to keep.
"""

from __future__ import annotations

import os
import platform
import random
import statistics
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
# A script run from bench/ has this folder first on sys.path, where bench/email.py stands in for
# the standard library's `email` package: psycopg then fails to load its C implementation and
# silently falls back to pure Python (a slower drain in every figure). Keep the folder, last.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != BENCH] + [str(BENCH)]
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/switchyard_bench"
SERVER_ENV = {
    "SECRET_KEY": "bench-secret-key-not-for-production-0123456789abcdef",
    "DEBUG": "false",
    "SECURE_SSL_REDIRECT": "false",
    "ALLOWED_HOSTS": "127.0.0.1,testserver,localhost",
    "LOG_LEVEL": "WARNING",
}


def bench_env() -> dict[str, str]:
    """The environment for this process and every server or command it starts."""
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    for key, value in SERVER_ENV.items():
        env.setdefault(key, value)
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def setup_django() -> None:
    """Point this process at the bench database (creating it if needed), set up Django, migrate."""
    os.environ.update(bench_env())
    url = os.environ["DATABASE_URL"]
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit(f"the benchmarks run on PostgreSQL; DATABASE_URL is {url}")
    ensure_database(url)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def ensure_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


def machine_line() -> str:
    from django.db import connection

    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        db_version = cursor.fetchone()[0]
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        memory_text = f", {memory:.0f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        memory_text = ""
    import psycopg

    return (
        f"machine: {os.cpu_count()} CPUs ({model}){memory_text}, Python {platform.python_version()}, "
        f"PostgreSQL {db_version.split()[0]}, psycopg {psycopg.__version__} ({psycopg.pq.__impl__}), "
        f"{platform.system()} {platform.release()}"
    )


def load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "unknown"


def truncate(*models) -> None:
    from django.db import connection

    tables = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in models)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Report:
    """Collect (name, measured, target, met) rows and print them as a table at the end."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.rows: list[tuple[str, str, str, str]] = []
        self.load_at_start = load_average()

    def add(self, name: str, measured: str, target: str = "", met: bool | None = None, detail: str = "") -> None:
        """`detail` is printed as the figure comes in, but kept out of the final table."""
        verdict = "" if met is None else ("met" if met else "MISSED")
        self.rows.append((name, measured, target, verdict))
        line = f"  {name}: {measured}" + (f"  (target {target}: {verdict})" if target else "")
        print(line + (f"\n      {detail}" if detail else ""), flush=True)

    def print(self, machine: str) -> None:
        print()
        print(f"== {self.title} ==")
        print(machine)
        # Other work on the box (a test suite, another benchmark) skews every figure: show it.
        print(f"load average (1 min): {self.load_at_start} at start, {load_average()} at end")
        widths = [max(len(r[i]) for r in [("figure", "measured", "target", ""), *self.rows]) for i in range(4)]
        header = ("figure", "measured", "target", "")
        for row in [header, *self.rows]:
            print("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())


def event_properties(n: int, rng: random.Random) -> dict:
    return {
        "order_id": f"o-{n}",
        "total": round(rng.random() * 500, 2),
        "currency": "USD",
        "items": rng.randrange(1, 9),
        "coupon": rng.choice(["", "SPRING", "VIP"]),
        "category": rng.choice(["books", "games", "tools"]),
        "first_order": rng.random() < 0.2,
        "channel": "web",
        "campaign": "bench",
        "step": rng.randrange(1, 5),
    }


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for a server a benchmark starts."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def counting_smtp_server(port: int, accepted, ready) -> None:
    """A local SMTP server that accepts every message and counts it in `accepted` (a shared
    multiprocessing Value); sets `ready` once listening. Run it in a process of its own."""
    import asyncio

    from aiosmtpd.controller import Controller

    class Counter:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
            with accepted.get_lock():
                accepted.value += 1
            return "250 2.0.0 Ok: queued"

    controller = Controller(Counter(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    try:
        asyncio.run(asyncio.Event().wait())
    finally:
        controller.stop()


def drain(profile: str | None = None, **kwargs):
    """The inbox drain (integrations.drain.drain_inbox), under a CPU profile when `profile` names
    a file (or BENCH_PROFILE does): read it with `python -m pstats FILE`."""
    from integrations.drain import drain_inbox

    profile = profile or os.environ.get("BENCH_PROFILE")
    if not profile:
        return drain_inbox(**kwargs)
    import cProfile
    import time

    profiler = cProfile.Profile(time.process_time)  # CPU, not waits on PostgreSQL
    result = profiler.runcall(drain_inbox, **kwargs)
    profiler.dump_stats(profile)
    print(f"    profile of the drain written to {profile}", flush=True)
    return result
