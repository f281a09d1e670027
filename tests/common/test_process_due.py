"""process_due, the django-q2 schedule and task, kicks after commit, staff's retry and cancel."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django_q.models import OrmQ, Schedule

from common import tasks
from common.workqueue import kick, kick_on_commit
from common.workqueue import kicks as kick_module
from common.workqueue.services import CANCELLED, items_cancel, items_retry_now
from tests.common.conftest import fresh, make_jobs
from tests.workqueue_app.models import Job


def process_due(*args) -> list[str]:
    out = StringIO()
    call_command("process_due", *args, stdout=out)
    return out.getvalue().splitlines()


@pytest.mark.django_db
def test_process_due_runs_everything_due_and_ends_with_a_count_per_kind(frozen, segment):
    client, _ = segment
    client.post("/v1/track", {"userId": "u1", "event": "Signed Up"})
    make_jobs(2)
    make_jobs(action="fail")
    make_jobs(action="permanent")
    make_jobs(action="ok", due=frozen.now() + timedelta(hours=1))  # not due
    lines = process_due()
    assert lines[0].startswith("inbox: 1 processed, 0 skipped, 0 waiting")
    assert "jobs: 2 done, 0 skipped, 1 retrying, 1 failed" in lines
    # Every other registered kind of work (email sends, ...) is listed too, with nothing done.
    others = [line for line in lines[1:] if not line.startswith("jobs:")]
    assert all(set(re.findall(r"\d+", line)) <= {"0"} for line in others), others
    # Run again at once: nothing left that is due.
    assert process_due("--type", "job") == ["jobs: 0 done, 0 skipped, 0 retrying, 0 failed"]


@pytest.mark.django_db
def test_process_due_names_a_kind_it_does_not_know():
    with pytest.raises(CommandError, match="--type: no such kind of work: emails"):
        process_due("--type", "emails")
    with pytest.raises(CommandError, match="--max-seconds"):
        process_due("--max-seconds", "0")


@pytest.mark.django_db
def test_process_due_help_states_what_it_selects():
    from common.management.commands.process_due import Command

    assert "due" in Command.help and "count per kind" in Command.help and "never does one item twice" in Command.help


@pytest.mark.django_db
def test_the_schedule_exists_after_migrate():
    Schedule.objects.filter(name="run due work").delete()
    call_command("migrate", verbosity=0)
    schedule = Schedule.objects.get(name="run due work")
    assert (schedule.func, schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        "common.tasks.run_due",
        Schedule.MINUTES,
        1,
        -1,
    )
    call_command("migrate", verbosity=0)  # idempotent
    assert Schedule.objects.filter(name="run due work").count() == 1


@pytest.mark.django_db
def test_the_task_runs_the_kinds_it_is_given(frozen):
    (job,) = make_jobs()
    result = tasks.run_due(["job"])
    assert result == {"job": {"done": 1, "skipped": 0, "retrying": 0, "failed": 0, "recovered": 0}}
    assert fresh(job).status == "done"


def queued_runs() -> list:
    return [task.task["args"] for task in OrmQ.objects.order_by("id")]


@pytest.fixture
def fresh_kicks():
    kick_module._last.clear()
    kick_module._pending.clear()
    yield
    kick_module._last.clear()


@pytest.mark.django_db(transaction=True)
def test_kicks_queue_a_run_and_a_burst_folds_into_one_trailing_run(fresh_kicks):
    kick("job")
    assert queued_runs() == [(["job"],)]
    for _ in range(20):
        kick("job")
    assert len(queued_runs()) == 1
    deadline = time.monotonic() + 10
    while len(queued_runs()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert queued_runs() == [(["job"],), (["job"],)]
    kick()  # every kind
    assert queued_runs()[-1] == (None,)


@pytest.mark.django_db(transaction=True)
def test_a_kick_on_commit_waits_for_the_commit(fresh_kicks):
    with transaction.atomic():
        kick_on_commit("job")
        assert queued_runs() == []
    assert queued_runs() == [(["job"],)]
    with pytest.raises(RuntimeError), transaction.atomic():
        kick_on_commit("job")
        raise RuntimeError("rolled back")
    assert len(queued_runs()) == 1


@pytest.mark.django_db
def test_staff_run_a_failed_item_again_and_it_gets_one_more_attempt(frozen, job_type):
    job_type(max_attempts=1)
    (job,) = make_jobs(action="fail_until:2")
    process_due("--type", "job")
    assert fresh(job).status == "failed"
    result = items_retry_now(model=Job, pks=[job.pk])
    assert (result.changed, result.running) == (1, 0)
    job = fresh(job)
    assert (job.status, job.next_attempt_at, job.finished_at) == ("pending", frozen.now(), None)
    assert process_due("--type", "job") == ["jobs: 1 done, 0 skipped, 0 retrying, 0 failed"]
    assert fresh(job).attempts == 2


@pytest.mark.django_db
def test_cancel_stops_an_item_and_leaves_running_and_finished_ones_alone(frozen, job_type):
    from common.workqueue.claim import claim

    waiting, running, finished = make_jobs(3)
    Job.objects.filter(pk=finished.pk).update(next_attempt_at=None, finished_at=frozen.now(), status="done")
    claim(job_type(), limit=1, due_by=frozen.now(), now=frozen.now(), worker="busy")  # takes `waiting` (lowest id)
    waiting, running = running, waiting
    result = items_cancel(model=Job, pks=[waiting.pk, running.pk, finished.pk])
    assert (result.changed, result.running, result.unchanged) == (1, 1, 1)
    waiting = fresh(waiting)
    assert (waiting.status, waiting.next_attempt_at, waiting.last_error) == ("cancelled", None, CANCELLED)
    assert fresh(running).claimed_by == "busy"
    assert fresh(finished).status == "done"
    assert process_due("--type", "job") == ["jobs: 0 done, 0 skipped, 0 retrying, 0 failed"]
