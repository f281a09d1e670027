"""The safety-net schedules: created (or corrected) after every migrate."""

from __future__ import annotations

SCHEDULES = [
    # Drains are also queued on commit by the inbound endpoints; this catches anything missed
    # (a broker hiccup, rows coming due after a backoff).
    {"name": "drain inbox", "func": "integrations.tasks.drain_inbox", "minutes": 1},
    # Settled rows older than INBOX_RETENTION_DAYS; small batches, so hourly is cheap.
    {"name": "prune inbox", "func": "integrations.tasks.prune_inbox", "minutes": 60},
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
