"""The Job work type's handler: does what each job's `action` says."""

from __future__ import annotations

import time

from common.workqueue import Outcome, WorkError, WorkType, register
from tests.workqueue_app.models import Job, JobRun


def handle_job(job: Job) -> Outcome | None:
    action, _, arg = job.action.partition(":")
    if action == "noop":
        return None
    if action == "sleep_first" and job.attempts == 1:
        time.sleep(float(arg))
    if action == "fail":
        raise WorkError("boom", status_code=500, response="server error")
    if action == "fail_until" and job.attempts < int(arg):
        raise WorkError(f"not yet (attempt {job.attempts})", status_code=503)
    if action == "permanent":
        raise WorkError("gone", permanent=True, status_code=410, response="no such endpoint")
    if action == "ambiguous":
        raise WorkError("timed out after sending", ambiguous=True)
    if action == "retry_after":
        raise WorkError("slow down", retry_after=float(arg), status_code=429)
    if action == "raise":
        raise RuntimeError("a bug")
    if action == "skip":
        job.status = "skipped"
        return Outcome.skipped("not eligible")
    JobRun.objects.create(job=job, attempt=job.attempts, worker=job.claimed_by)
    job.status = "done"
    return Outcome.ok(status_code=200, response=f"done {job.name}")


def job_type(**overrides) -> WorkType:
    options = {"label": "jobs", "batch_size": 100, "max_attempts": 4, "update_fields": ("status",)}
    options.update(overrides)
    if "batch_handler" not in options:
        options.setdefault("handler", handle_job)
    return WorkType("job", Job, **options)


def register_job_type(**overrides) -> WorkType:
    return register(job_type(**overrides), replace=True)
