"""Real worker processes: a process_due that is killed mid-batch, and a django-q2 cluster.

A killed worker's rows come back within its lease (30 s by default), not after a long one:
while it lives, heartbeats keep its rows from other workers; once it is killed, the lease
runs out and another worker takes the rows, counting the lost attempt.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.db import connection
from django_q.models import Schedule

from common import clock
from common.schedules import ensure_schedules
from common.workqueue import kick
from common.workqueue.models import Attempt, AttemptOutcome
from common.workqueue.run import LOST, run_due
from tests.workqueue_app.models import Job, JobRun

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("worker processes need a shared database (PostgreSQL); SQLite tests run in memory")


def database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def start(tmp_path):
    """Start `manage.py <args>` against the test database; stopped (or killed) at the end."""
    processes = []

    def run(*args: str, **env: str) -> subprocess.Popen:
        log = open(tmp_path / f"{args[0]}-{len(processes)}.log", "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": database_url(), "Q_BROKER": "orm", "Q_WORKERS": "1", **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process.log_path = Path(log.name)
        processes.append(process)
        return process

    yield run
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_for(predicate, process: subprocess.Popen, what: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    output = process.log_path.read_text(errors="replace")
    pytest.fail(f"{what} did not happen; the process said:\n{output[-3000:]}")


def kill(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_a_killed_worker_holds_its_rows_while_alive_and_they_come_back_after_its_lease(start):
    (job,) = [Job.objects.create(action="sleep_first:120", next_attempt_at=clock.now())]
    worker = start("process_due", "--type", "job", WORKQUEUE_LEASE_SECONDS="3")
    wait_for(lambda: Job.objects.filter(pk=job.pk).exclude(claimed_by="").exists(), worker, "the claim")
    first_lease = Job.objects.get(pk=job.pk).next_attempt_at
    time.sleep(4.5)  # past its 3 s lease: only heartbeats keep it
    assert run_due(types=["job"])["job"]["done"] == 0
    assert Job.objects.get(pk=job.pk).next_attempt_at > first_lease

    kill(worker)
    killed_at = clock.now()
    held = Job.objects.get(pk=job.pk)
    assert held.next_attempt_at <= killed_at + timedelta(seconds=3)
    wait_for(lambda: run_due(types=["job"])["job"]["done"] == 1, worker, "the recovery")

    job = Job.objects.get(pk=job.pk)
    assert (job.status, job.attempts) == ("done", 2)
    assert JobRun.objects.filter(job=job).count() == 1
    lost, done = Attempt.objects.filter(object_id=job.pk).order_by("number")
    assert (lost.outcome, lost.error, lost.worker) == (AttemptOutcome.AMBIGUOUS, LOST, held.claimed_by)
    assert str(worker.pid) in lost.worker
    assert done.outcome == AttemptOutcome.OK


def test_with_the_default_lease_a_killed_workers_rows_are_due_within_30_seconds(start):
    (job,) = [Job.objects.create(action="sleep_first:120", next_attempt_at=clock.now())]
    worker = start("process_due", "--type", "job")
    wait_for(lambda: Job.objects.filter(pk=job.pk).exclude(claimed_by="").exists(), worker, "the claim")
    kill(worker)
    killed_at = clock.now()
    due_again = Job.objects.get(pk=job.pk).next_attempt_at
    assert killed_at < due_again <= killed_at + timedelta(seconds=30)
    with time_machine.travel(due_again - timedelta(seconds=1), tick=False) as traveller:
        assert run_due(types=["job"])["job"]["done"] == 0
        traveller.move_to(due_again)
        assert run_due(types=["job"])["job"] == {"done": 1, "skipped": 0, "retrying": 0, "failed": 0, "recovered": 1}
    assert Job.objects.get(pk=job.pk).attempts == 2


def test_a_cluster_runs_due_jobs_on_its_schedule_and_when_kicked(start):
    Job.objects.bulk_create([Job(name=f"scheduled-{n}", next_attempt_at=clock.now()) for n in range(3)])
    ensure_schedules()
    Schedule.objects.filter(name="run due work").update(next_run=clock.now() - timedelta(seconds=1))
    cluster = start("qcluster")
    wait_for(lambda: Job.objects.filter(status="done").count() == 3, cluster, "the scheduled run", seconds=120)

    Job.objects.bulk_create([Job(name=f"kicked-{n}", next_attempt_at=clock.now()) for n in range(2)])
    kick("job")
    wait_for(lambda: Job.objects.filter(status="done").count() == 5, cluster, "the kicked run")
    assert JobRun.objects.count() == 5
    assert set(Job.objects.values_list("attempts", flat=True)) == {1}
