"""common's django-q2 schedule: run all due work every minute. Created (or corrected) after every migrate.

Apps kick a run after they commit new rows (common.workqueue.kicks), so the minute only bounds
how late a retry, a row that came due by its time, or a missed kick is picked up.
"""

from __future__ import annotations

SCHEDULES = [
    {"name": "run due work", "func": "common.tasks.run_due", "minutes": 1},
]


def ensure_schedules(**kwargs) -> None:
    from django_q.models import Schedule

    for spec in SCHEDULES:
        Schedule.objects.update_or_create(
            name=spec["name"],
            defaults={
                "func": spec["func"],
                "schedule_type": Schedule.MINUTES,
                "minutes": spec["minutes"],
                "repeats": -1,
            },
        )
