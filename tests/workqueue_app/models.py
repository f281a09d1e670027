"""Job: a queue row whose `action` tells the test handler what to do with it."""

from __future__ import annotations

from django.db import models

from common.workqueue.models import WorkItem


class Job(WorkItem):
    name = models.CharField(max_length=50, blank=True, default="")
    # ok, noop, fail, permanent, ambiguous, skip, raise, retry_after:N, fail_until:N, sleep_first:N
    action = models.CharField(max_length=50, default="ok")
    status = models.CharField(max_length=20, default="pending")
    due_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"job {self.pk} ({self.action})"

    def work_failed(self, error: str) -> None:
        self.status = "failed"

    def work_cancelled(self) -> None:
        self.status = "cancelled"

    def work_retried(self) -> None:
        self.status = "pending"


class JobRun(models.Model):
    """One completed run of a job's work: exactly one per job means it was done once."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="runs")
    attempt = models.PositiveIntegerField()
    worker = models.CharField(max_length=100, blank=True, default="")

    def __str__(self) -> str:
        return f"run of job {self.job_id}, attempt {self.attempt}"
