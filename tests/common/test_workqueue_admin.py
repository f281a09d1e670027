"""The queue's admin blocks: the attempt log's list, a queue's change page with its attempts,
and the retry and cancel actions saying what they did."""

from __future__ import annotations

import pytest
from django.contrib.admin.sites import site
from django.core import checks
from django.urls import reverse

from common.workqueue.models import Attempt
from common.workqueue.run import run_due
from tests.common.conftest import fresh, make_jobs
from tests.workqueue_app.models import Job

pytestmark = pytest.mark.django_db


def test_the_attempt_log_lists_attempts_filtered_by_outcome_and_kind(staff, frozen):
    make_jobs(action="permanent")
    make_jobs(action="ok")
    run_due(types=["job"])
    url = reverse("admin:common_attempt_changelist")
    page = staff.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert "gone" in text and "failed for good" in text
    assert reverse("admin:workqueue_app_job_change", args=[Job.objects.get(action="permanent").pk]) in text
    failed = staff.get(url, {"outcome": "failed"}).content.decode()
    assert "gone" in failed and "done j0" not in failed
    assert staff.get(url, {"kind": "job"}).status_code == 200
    attempt = Attempt.objects.get(outcome="failed")
    detail = staff.get(reverse("admin:common_attempt_change", args=[attempt.pk]))
    assert detail.status_code == 200 and "no such endpoint" in detail.content.decode()
    assert staff.get(reverse("admin:common_attempt_add")).status_code == 403


def test_a_queue_item_page_shows_its_attempts_newest_first(staff, frozen, job_type):
    job_type(max_attempts=3)
    (job,) = make_jobs(action="fail_until:2")
    run_due(types=["job"])
    frozen.advance(3600)
    run_due(types=["job"])
    page = staff.get(reverse("admin:workqueue_app_job_change", args=[job.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert text.index("done j0") < text.index("not yet (attempt 1)")  # newest first
    listing = staff.get(reverse("admin:workqueue_app_job_changelist")).content.decode()
    assert "done" in listing and "Run again now" in listing and "Cancel (no further attempts)" in listing


def test_the_actions_report_what_they_changed(staff, frozen):
    from common.workqueue.claim import claim
    from common.workqueue.registry import get_type

    failed, running = make_jobs(action="permanent") + make_jobs(action="ok")
    run_due(types=["job"])  # `running` is done now, `failed` failed
    Job.objects.filter(pk=running.pk).update(next_attempt_at=frozen.now(), finished_at=None)
    claim(get_type("job"), limit=5, due_by=frozen.now(), now=frozen.now(), worker="busy")
    url = reverse("admin:workqueue_app_job_changelist")
    answer = staff.post(
        url, {"action": "run_again_now", "_selected_action": [failed.pk, running.pk]}, follow=True
    ).content.decode()
    assert "1 queued to run now; 1 running now, left alone." in answer
    assert fresh(failed).next_attempt_at == frozen.now()
    answer = staff.post(url, {"action": "cancel_work", "_selected_action": [failed.pk]}, follow=True).content.decode()
    assert "1 cancelled." in answer
    assert fresh(failed).status == "cancelled"


def test_a_queue_model_without_the_due_index_is_flagged():
    from common.apps import check_work_items

    assert check_work_items() == []
    job_meta = Job._meta
    saved = job_meta.indexes
    job_meta.indexes = []
    try:
        (warning,) = check_work_items()
    finally:
        job_meta.indexes = saved
    assert warning.id == "common.W001" and isinstance(warning, checks.Warning)


def test_every_queue_admin_is_registered():
    assert Attempt in site._registry and Job in site._registry
