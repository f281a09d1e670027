"""Two workers at once, each with its own database connection: every row is done exactly once.

PostgreSQL only: the workers are threads with their own connections, and the rows they claim
must be committed for the other to see them (transactional_db). SQLite's in-memory test
database cannot give two threads concurrent transactions.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from common import clock
from common.workqueue.claim import Heartbeat, claim
from common.workqueue.models import Attempt
from common.workqueue.run import run_due
from tests.workqueue_app.models import Job, JobRun

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("concurrent workers need PostgreSQL (SKIP LOCKED, a connection per thread)")


def in_threads(count: int, target) -> list:
    """Run `target(n)` in `count` threads started together; their results, in order."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list = []

    def run(n: int) -> None:
        try:
            barrier.wait()
            results[n] = target(n)
        except BaseException as error:  # noqa: BLE001 - surfaced below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def due_jobs(count: int) -> None:
    now = clock.now()
    Job.objects.bulk_create([Job(name=f"j{n}", next_attempt_at=now) for n in range(count)])


def test_two_claims_at_the_same_moment_take_different_rows(job_type):
    work_type = job_type()
    due_jobs(60)
    now = clock.now()
    taken = in_threads(
        2, lambda n: [i.pk for i in claim(work_type, limit=40, due_by=now, now=now, worker=f"w{n}").items]
    )
    first, second = set(taken[0]), set(taken[1])
    assert not first & second
    assert len(first | second) == 60
    assert Job.objects.filter(attempts=1).count() == 60


def test_two_workers_running_due_work_do_every_job_exactly_once(job_type):
    job_type(batch_size=10)
    due_jobs(300)
    results = in_threads(2, lambda n: run_due(types=["job"], max_seconds=120)["job"])
    assert sum(r["done"] for r in results) == 300
    assert all(r["done"] > 0 for r in results), results  # both took part
    assert JobRun.objects.count() == 300
    assert set(JobRun.objects.values_list("job", flat=True)) == set(Job.objects.values_list("pk", flat=True))
    assert set(Job.objects.values_list("attempts", "status")) == {(1, "done")}
    assert Attempt.objects.count() == 300
    assert len(set(Attempt.objects.values_list("worker", flat=True))) == 2


def test_a_heartbeat_keeps_a_long_batch_leased(job_type):
    work_type = job_type(lease=3)
    due_jobs(2)
    now = clock.now()
    held = claim(work_type, limit=10, due_by=now, now=now, worker="long")
    first_lease = Job.objects.values_list("next_attempt_at", flat=True).first()
    with Heartbeat(held) as heartbeat:
        time.sleep(2.6)  # past two beats (one a second), still within one lease
        # Meanwhile another worker finds nothing due.
        assert in_threads(1, lambda n: run_due(types=["job"])["job"]["done"]) == [0]
    assert heartbeat.renewals >= 2
    assert set(Job.objects.values_list("claimed_by", flat=True)) == {"long"}
    assert Job.objects.values_list("next_attempt_at", flat=True).first() > first_lease
