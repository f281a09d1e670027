"""The work queue: claim with a lease, attempts with backoff, a permanent failure, the attempt
log, recovery of a lost worker's rows, and run_due's counts. The clock is time-machine's."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from common.workqueue import STANDARD_WEBHOOKS, Backoff, Outcome, WorkError
from common.workqueue.claim import claim, renew
from common.workqueue.models import Attempt, AttemptOutcome, QueueStatus
from common.workqueue.run import LATE, LOST, finish, run_batch, run_due
from tests.common.conftest import fresh, make_jobs
from tests.workqueue_app.models import Job, JobRun

pytestmark = pytest.mark.django_db

NO_JITTER = Backoff(first=60, factor=2, cap=3600, jitter="none")


def attempts_of(job: Job) -> list[Attempt]:
    return list(Attempt.objects.filter(object_id=job.pk).order_by("number", "id"))


def run_jobs(**kwargs) -> dict:
    return run_due(types=["job"], **kwargs)["job"]


def test_a_due_job_runs_once_and_its_attempt_is_logged(frozen):
    (job,) = make_jobs(name="welcome")
    counts = run_jobs()
    assert counts == {"done": 1, "skipped": 0, "retrying": 0, "failed": 0, "recovered": 0}
    job = fresh(job)
    assert (job.status, job.attempts, job.next_attempt_at, job.finished_at) == ("done", 1, None, frozen.now())
    assert job.claimed_by == "" and job.last_error == ""
    assert job.queue_status == QueueStatus.DONE
    (attempt,) = attempts_of(job)
    assert attempt.item == job
    assert (attempt.number, attempt.outcome, attempt.status_code) == (1, AttemptOutcome.OK, 200)
    assert attempt.response == "done welcome"
    assert attempt.started_at == frozen.now()
    assert attempt.duration_ms is not None and attempt.duration_ms >= 0
    assert attempt.worker and attempt.error == ""
    assert JobRun.objects.filter(job=job).count() == 1
    # Nothing is due any more: a second run does nothing.
    assert run_jobs()["done"] == 0
    # The log goes with its item.
    assert list(job.work_attempts.all()) == [attempt]
    job.delete()
    assert not Attempt.objects.exists()


def test_a_job_not_yet_due_waits_for_its_time(frozen):
    (job,) = make_jobs(due=frozen.now() + timedelta(minutes=10))
    assert run_jobs()["done"] == 0
    frozen.advance(599)
    assert run_jobs()["done"] == 0
    frozen.advance(1)
    assert run_jobs()["done"] == 1
    assert fresh(job).status == "done"


def test_a_failed_attempt_is_retried_after_its_backoff_not_before(frozen, job_type):
    job_type(backoff=NO_JITTER)
    (job,) = make_jobs(action="fail_until:2")
    assert run_jobs()["retrying"] == 1
    job = fresh(job)
    assert job.next_attempt_at == frozen.now() + timedelta(seconds=60)
    assert (job.attempts, job.last_error, job.status) == (1, "not yet (attempt 1)", "pending")
    assert job.queue_status == QueueStatus.RETRYING and job.claimed_by == ""
    frozen.advance(59)
    assert run_jobs() == {"done": 0, "skipped": 0, "retrying": 0, "failed": 0}
    frozen.advance(1)
    assert run_jobs()["done"] == 1
    job = fresh(job)
    assert (job.attempts, job.status, job.last_error, job.next_attempt_at) == (2, "done", "", None)
    outcomes = [(a.number, a.outcome, a.status_code) for a in attempts_of(job)]
    assert outcomes == [(1, AttemptOutcome.RETRY, 503), (2, AttemptOutcome.OK, 200)]


def test_a_permanent_failure_stops_at_once(frozen):
    (job,) = make_jobs(action="permanent")
    assert run_jobs()["failed"] == 1
    job = fresh(job)
    assert (job.status, job.attempts, job.next_attempt_at, job.last_error) == ("failed", 1, None, "gone")
    assert job.queue_status == QueueStatus.FAILED
    (attempt,) = attempts_of(job)
    assert (attempt.outcome, attempt.status_code, attempt.response, attempt.error) == (
        AttemptOutcome.FAILED,
        410,
        "no such endpoint",
        "gone",
    )
    frozen.advance(30 * 86400)
    assert run_jobs()["failed"] == 0
    assert fresh(job).attempts == 1


def test_an_item_fails_for_good_after_max_attempts(frozen, job_type):
    job_type(backoff=NO_JITTER, max_attempts=3)
    (job,) = make_jobs(action="fail")
    for _ in range(3):
        run_jobs()
        frozen.advance(3600)
    job = fresh(job)
    assert (job.attempts, job.status, job.next_attempt_at) == (3, "failed", None)
    assert [a.outcome for a in attempts_of(job)] == [AttemptOutcome.RETRY, AttemptOutcome.RETRY, AttemptOutcome.FAILED]
    # The backoff doubled between the two retries (60 s, then 120 s).
    first, second, _ = attempts_of(job)
    assert second.started_at - first.started_at == timedelta(seconds=3600)
    assert run_jobs()["failed"] == 0


def test_backoff_grows_and_is_capped(frozen, job_type):
    job_type(backoff=Backoff(first=60, factor=2, cap=150, jitter="none"), max_attempts=10)
    (job,) = make_jobs(action="fail")
    waits = []
    for _ in range(4):
        run_jobs()
        job = fresh(job)
        waits.append((job.next_attempt_at - frozen.now()).total_seconds())
        frozen.move_to(job.next_attempt_at)
    assert waits == [60, 120, 150, 150]


def test_retry_after_replaces_the_backoff_and_is_capped(frozen, job_type):
    job_type(backoff=NO_JITTER, max_retry_after=600)
    polite, greedy = make_jobs(action="retry_after:120") + make_jobs(action="retry_after:999999")
    assert run_jobs()["retrying"] == 2
    assert fresh(polite).next_attempt_at == frozen.now() + timedelta(seconds=120)
    assert fresh(greedy).next_attempt_at == frozen.now() + timedelta(seconds=600)
    assert {a.status_code for a in Attempt.objects.all()} == {429}


def test_jitter_stays_within_its_bounds():
    rng = random.Random(7)
    full = Backoff(first=10, factor=3, cap=1000, jitter="full")
    spread = Backoff(first=10, factor=3, cap=1000, jitter="spread", spread=0.2)
    for attempts in range(1, 12):
        step = min(10 * 3 ** (attempts - 1), 1000)
        samples = [full.delay(attempts, rng) for _ in range(300)]
        assert all(0 <= s <= step for s in samples)
        assert max(samples) > step * 0.8 and min(samples) < step * 0.2  # it does spread
        samples = [spread.delay(attempts, rng) for _ in range(300)]
        assert all(step * 0.8 <= s <= min(step * 1.2, 1000) for s in samples)
    assert Backoff(jitter="none").delay(10_000) == Backoff().cap  # no overflow on a huge count
    with pytest.raises(ValueError, match="jitter"):
        Backoff(jitter="sometimes")


def test_standard_webhooks_schedule():
    assert [STANDARD_WEBHOOKS.step(n) for n in range(1, 8)] == [5, 300, 1800, 7200, 18000, 36000, 36000]
    rng = random.Random(1)
    for n in range(1, 7):
        step = STANDARD_WEBHOOKS.step(n)
        assert all(step * 0.9 <= STANDARD_WEBHOOKS.delay(n, rng) <= step * 1.1 for _ in range(100))


def test_a_crash_between_claim_and_finish_is_recovered_once_the_lease_runs_out(frozen, job_type):
    work_type = job_type(lease=30)
    (job,) = make_jobs()
    held = claim(work_type, limit=10, due_by=frozen.now(), now=frozen.now(), worker="dead-worker")
    assert [item.pk for item in held.items] == [job.pk]
    job = fresh(job)
    assert (job.attempts, job.claimed_by, job.queue_status) == (1, "dead-worker", QueueStatus.RUNNING)
    # The worker dies here: it never finishes. Within the lease nobody else may take the row.
    frozen.advance(29)
    assert run_jobs()["done"] == 0
    frozen.advance(1)
    counts = run_jobs()
    assert counts["done"] == 1 and counts["recovered"] == 1
    job = fresh(job)
    assert (job.attempts, job.status, job.claimed_by) == (2, "done", "")
    assert JobRun.objects.filter(job=job).count() == 1  # done once
    lost, done = attempts_of(job)
    assert (lost.number, lost.outcome, lost.worker, lost.error, lost.duration_ms) == (
        1,
        AttemptOutcome.AMBIGUOUS,
        "dead-worker",
        LOST,
        None,
    )
    assert (done.number, done.outcome) == (2, AttemptOutcome.OK)


def test_an_item_that_keeps_killing_its_worker_is_given_up(frozen, job_type):
    work_type = job_type(lease=30, max_attempts=2)
    (job,) = make_jobs()
    for n in range(2):
        claim(work_type, limit=10, due_by=frozen.now(), now=frozen.now(), worker=f"dead-{n}")
        frozen.advance(31)
    assert run_jobs()["failed"] == 1
    job = fresh(job)
    assert (job.attempts, job.status, job.next_attempt_at) == (3, "failed", None)
    assert job.last_error == "gave up: attempt 2 did not finish"
    assert not JobRun.objects.exists()


def test_a_late_finish_does_not_overwrite_the_worker_that_took_over(frozen, job_type):
    work_type = job_type(lease=30)
    (job,) = make_jobs()
    slow = claim(work_type, limit=10, due_by=frozen.now(), now=frozen.now(), worker="slow")
    frozen.advance(31)
    assert run_jobs()["done"] == 1
    # The slow worker comes back with a failure: the row keeps the other worker's result.
    finish(slow, {job.pk: Outcome.failure(WorkError("timeout"))}, now=frozen.now())
    job = fresh(job)
    assert (job.status, job.next_attempt_at, job.last_error) == ("done", None, "")
    late = Attempt.objects.filter(object_id=job.pk, worker="slow", number=1, outcome=AttemptOutcome.RETRY).get()
    assert late.error == "timeout" + LATE


def test_renewing_a_lease_keeps_the_rows(frozen, job_type):
    work_type = job_type(lease=30)
    (job,) = make_jobs()
    held = claim(work_type, limit=10, due_by=frozen.now(), now=frozen.now(), worker="busy")
    frozen.advance(20)
    assert renew(held) == 1
    assert fresh(job).next_attempt_at == frozen.now() + timedelta(seconds=30)
    frozen.advance(29)
    assert run_jobs()["done"] == 0  # still held
    # Another worker's claim cannot be renewed by this one.
    frozen.advance(2)
    run_jobs()
    assert renew(held) == 0


def test_a_skipped_item_is_finished_with_its_reason(frozen):
    (job,) = make_jobs(action="skip")
    assert run_jobs()["skipped"] == 1
    job = fresh(job)
    assert (job.status, job.next_attempt_at, job.queue_status) == ("skipped", None, QueueStatus.DONE)
    (attempt,) = attempts_of(job)
    assert (attempt.outcome, attempt.error) == (AttemptOutcome.SKIPPED, "not eligible")


def test_an_ambiguous_attempt_is_logged_apart_and_retried(frozen):
    (job,) = make_jobs(action="ambiguous")
    assert run_jobs()["retrying"] == 1
    (attempt,) = attempts_of(job)
    assert (attempt.outcome, attempt.error) == (AttemptOutcome.AMBIGUOUS, "timed out after sending")
    assert fresh(job).next_attempt_at > frozen.now()


def test_a_bug_in_one_item_does_not_stop_the_batch(frozen):
    jobs = make_jobs(2) + make_jobs(action="raise") + make_jobs(2)
    counts = run_jobs()
    assert (counts["done"], counts["retrying"]) == (4, 1)
    broken = fresh(jobs[2])
    assert broken.last_error == "RuntimeError: a bug"


def test_a_batch_handler_answers_per_item_and_an_item_it_forgets_is_retried(frozen, job_type):
    seen = []

    def send_all(items):
        seen.append([item.pk for item in items])
        answers = {}
        for item in items:
            if item.action == "ok":
                item.status = "done"
                answers[item.pk] = Outcome.ok(status_code=202)
            elif item.action == "fail":
                answers[item.pk] = Outcome.failure(WorkError("rejected", status_code=400, permanent=True))
        return answers

    job_type(batch_handler=send_all, batch_size=50)
    ok = make_jobs(3)
    bad = make_jobs(action="fail")
    forgotten = make_jobs(action="noop")
    counts = run_jobs()
    assert (counts["done"], counts["failed"], counts["retrying"]) == (3, 1, 1)
    assert len(seen) == 1 and len(seen[0]) == 5  # one call for the whole batch
    assert {fresh(j).status for j in ok} == {"done"}
    assert fresh(bad[0]).status == "failed"
    assert fresh(forgotten[0]).last_error == "the handler gave no outcome for this item"
    # Every attempt of the batch carries the batch's time.
    assert len({a.duration_ms for a in Attempt.objects.all()}) == 1


def test_an_error_raised_by_a_batch_handler_applies_to_the_whole_batch(frozen, job_type):
    def down(items):
        raise WorkError("connection refused", retry_after=30)

    job_type(batch_handler=down)
    jobs = make_jobs(3)
    assert run_jobs()["retrying"] == 3
    assert {fresh(j).next_attempt_at for j in jobs} == {frozen.now() + timedelta(seconds=30)}


def test_batches_are_claimed_in_due_order_and_sized(frozen, job_type):
    job_type(batch_size=2)
    late = make_jobs(due=frozen.now() - timedelta(seconds=1))
    early = make_jobs(due=frozen.now() - timedelta(seconds=60))
    later = make_jobs(3)
    counts = run_batch(job_type(batch_size=2), due_by=frozen.now(), now=frozen.now)
    assert counts["done"] == 2
    assert {fresh(j).status for j in early + late} == {"done"}
    assert {fresh(j).status for j in later} == {"pending"}


def test_run_due_takes_only_what_was_due_when_it_started(frozen, job_type):
    job_type(backoff=Backoff(first=0, jitter="none"))
    (job,) = make_jobs(action="fail")
    # A retry due at once is left for the next run rather than spun on in this one.
    assert run_jobs()["retrying"] == 1
    assert fresh(job).attempts == 1


def test_run_due_counts_every_kind_including_the_inbox(frozen, segment):
    client, _ = segment
    assert client.post("/v1/identify", {"userId": "u1", "traits": {"email": "u1@example.com"}}).status_code == 200
    make_jobs(2)
    results = run_due()
    assert list(results)[:1] == ["inbox"]
    assert results["inbox"] == {"processed": 1, "skipped": 0, "waiting": 0, "failed": 0}
    assert results["job"]["done"] == 2
    with pytest.raises(ValueError, match="no such kind of work: nope"):
        run_due(types=["nope"])


def test_run_due_with_no_time_left_starts_nothing(frozen):
    make_jobs(1)
    assert run_due(types=["job"], max_seconds=0) == {"job": {"done": 0, "skipped": 0, "retrying": 0, "failed": 0}}


def test_a_batch_costs_the_same_queries_whatever_its_size(frozen, job_type):
    # Claim, finish and attempt log are bulk statements. (On PostgreSQL the bulk writes go
    # through psycopg directly and are not captured; on SQLite every statement is.)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    job_type(batch_size=500)

    def queries_for(count: int) -> int:
        make_jobs(count, action="noop")
        with CaptureQueriesContext(connection) as captured:
            assert run_jobs()["done"] == count
        return len(captured.captured_queries)

    queries_for(1)  # the first run looks up the queue's content type once
    assert queries_for(5) == queries_for(50)
