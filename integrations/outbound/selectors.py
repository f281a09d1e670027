"""Reads of the outbound history: the per-day Sync Summary (completions, failures, queue)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from integrations.outbound.models import OutboxItem, OutboxStatus, SyncRun, SyncTrigger


@dataclass
class Day:
    day: date
    sent: int
    failed: int
    skipped: int
    queued: int


def sync_summary(*, integration, days: int = 14) -> list[Day]:
    """Per UTC day, newest first: sent (completions), failed and skipped, summed over the day's
    sync runs (a few rows per day, not one per message), and queued: the messages created that
    day that are still waiting (one walk of the integration's queued rows)."""
    today = timezone.now().date()
    first = today - timedelta(days=days - 1)
    totals = {
        row["day"]: row
        for row in SyncRun.objects.filter(integration=integration, started_at__date__gte=first)
        .exclude(trigger=SyncTrigger.BACKFILL)
        .annotate(day=TruncDate("started_at"))
        .values("day")
        .annotate(sent=Sum("sent"), failed=Sum("failed"), skipped=Sum("skipped"))
    }
    queued: dict[date, int] = {}
    for row in (
        OutboxItem.objects.filter(integration=integration, status=OutboxStatus.QUEUED)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("id"))
    ):
        day = max(row["day"], first)  # older ones still waiting count on the chart's first day
        queued[day] = queued.get(day, 0) + row["n"]
    out = []
    for offset in range(days):
        day = today - timedelta(days=offset)
        row = totals.get(day) or {}
        out.append(Day(day, row.get("sent") or 0, row.get("failed") or 0, row.get("skipped") or 0, queued.get(day, 0)))
    return out
