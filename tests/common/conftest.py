"""Work-queue fixtures: a clock the test moves, the Job work type, jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from common import clock
from tests.workqueue_app.handlers import register_job_type
from tests.workqueue_app.models import Job

START = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)


class Clock:
    """common.clock.now() pinned at START; `advance` moves it (and every thread's) forward."""

    def __init__(self, traveller) -> None:
        self.traveller = traveller

    def now(self) -> datetime:
        return clock.now()

    def advance(self, seconds: float) -> datetime:
        self.traveller.shift(timedelta(seconds=seconds))
        return clock.now()

    def move_to(self, when: datetime) -> datetime:
        self.traveller.move_to(when)
        return clock.now()


@pytest.fixture
def frozen():
    with time_machine.travel(START, tick=False) as traveller:
        yield Clock(traveller)


@pytest.fixture
def job_type():
    """Re-register the Job type with other options for one test; the default comes back after."""

    def configure(**overrides):
        return register_job_type(**overrides)

    yield configure
    register_job_type()


def make_jobs(count: int = 1, *, action: str = "ok", due: datetime | None = None, **fields) -> list[Job]:
    when = due or clock.now()
    name = fields.pop("name", None)
    return [
        Job.objects.create(name=name or f"j{n}", action=action, due_at=when, next_attempt_at=when, **fields)
        for n in range(count)
    ]


def fresh(job: Job) -> Job:
    return Job.objects.get(pk=job.pk)
