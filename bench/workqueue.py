"""Work-queue benchmark: due no-op jobs through run_due, with one and with two worker processes.

    .venv/bin/python bench/workqueue.py [--jobs 20000] [--batches 100,500] [--processes 1,2]

On PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/switchyard_bench,
created and migrated when missing). The jobs live in the test app's Job table, so this runs
with config.settings_test, which installs it; the Job table and the attempt log are emptied
before each round. A job's handler does nothing: the figure is the queue's own cost per item,
i.e. its share of a claim (UPDATE … RETURNING with SKIP LOCKED), the heartbeat, the bulk finish
and one Attempt row. Workers are separate processes started before the clock runs; they are
told to go together, and the time is from the first start to the last finish.
The figures are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ROOT, Report, bench_env, ensure_database, machine_line  # noqa: E402


def environment() -> dict[str, str]:
    env = bench_env()
    env["DJANGO_SETTINGS_MODULE"] = "config.settings_test"  # installs tests.workqueue_app (Job)
    return env


def setup(*, migrate: bool) -> None:
    os.environ.update(environment())
    url = os.environ["DATABASE_URL"]
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit(f"the benchmarks run on PostgreSQL; DATABASE_URL is {url}")
    if migrate:
        ensure_database(url)
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)


def child(batch: int) -> None:
    """One worker: wait for "go", run everything due, print what it did and when."""
    setup(migrate=False)
    from common.workqueue import run_due
    from tests.workqueue_app.handlers import register_job_type

    register_job_type(batch_size=batch)
    print("ready", flush=True)
    sys.stdin.readline()
    started = time.time()
    counts = run_due(types=["job"], max_seconds=3600)["job"]
    print(json.dumps({"started": started, "ended": time.time(), "done": counts["done"]}), flush=True)


def fill(jobs: int) -> None:
    from django.db import connection

    from common.workqueue.models import Attempt
    from tests.workqueue_app.models import Job, JobRun

    quote = connection.ops.quote_name
    tables = ", ".join(quote(m._meta.db_table) for m in (JobRun, Job, Attempt))
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY")
        cursor.execute(
            f"INSERT INTO {quote(Job._meta.db_table)} "
            "(name, action, status, next_attempt_at, attempts, last_error, claimed_by) "
            "SELECT 'bench-' || n, 'noop', 'pending', now() - interval '1 second', 0, '', '' "
            "FROM generate_series(1, %s) AS n",
            [jobs],
        )
        cursor.execute(f"ANALYZE {quote(Job._meta.db_table)}")


def round_(jobs: int, batch: int, processes: int) -> tuple[float, list[int]]:
    from common.workqueue.models import Attempt
    from tests.workqueue_app.models import Job

    fill(jobs)
    workers = [
        subprocess.Popen(
            [sys.executable, __file__, "--child", "--batch", str(batch)],
            cwd=ROOT,
            env=environment(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for worker in workers:
        line = worker.stdout.readline()
        if line.strip() != "ready":
            sys.exit(f"a worker failed to start: {line}")
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    results = [json.loads(worker.stdout.readline()) for worker in workers]
    for worker in workers:
        worker.wait()
    elapsed = max(r["ended"] for r in results) - min(r["started"] for r in results)
    finished = Job.objects.filter(finished_at__isnull=False, attempts=1).count()
    if finished != jobs or Attempt.objects.count() != jobs:
        sys.exit(f"expected {jobs} jobs done once, found {finished} ({Attempt.objects.count()} attempts)")
    return elapsed, [r["done"] for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20000, help="due no-op jobs per round (default 20000)")
    parser.add_argument("--batches", default="100,500", help="batch sizes to try (default 100,500)")
    parser.add_argument("--processes", default="1,2", help="worker process counts to try (default 1,2)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=100, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.batch)
        return
    setup(migrate=True)
    report = Report("work queue: no-op jobs through run_due")
    for batch in [int(b) for b in args.batches.split(",")]:
        for processes in [int(p) for p in args.processes.split(",")]:
            elapsed, split = round_(args.jobs, batch, processes)
            report.add(
                f"{processes} process{'es' if processes > 1 else ''}, batch {batch}",
                f"{args.jobs / elapsed:,.0f} items/s",
                detail=f"{args.jobs} jobs in {elapsed:.2f} s; per process: {', '.join(map(str, split))}",
            )
    report.print(machine_line() + f" (os.cpu_count() = {os.cpu_count()})")


if __name__ == "__main__":
    main()
