"""A loop's figures: per-day counters written with the changes that make them, read in a few rows.

Counting a busy loop's enrolments on every admin page or API call would walk all of them; the
counters cost one upsert per drained chunk (or due batch) instead, inside the same transaction
as the enrolments they count, so a rolled-back chunk rolls its figures back too. Rows are
upserted in (loop, day) order, so two workers never wait on each other's rows in a cycle.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date, timedelta

from django.db import connection
from django.db.models import Sum

from campaigns.loops.models import LoopDay
from common import clock

FIGURES = ("started", "emailed", "exited", "unsubscribed")


class Tally:
    """Counts to add, by loop, day and figure; `save()` writes them in one statement."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[int, date, str]] = Counter()

    def add(self, loop_id: int, figure: str, n: int = 1, *, day: date | None = None) -> None:
        if n:
            self.counts[(loop_id, day or clock.now().date(), figure)] += n

    def save(self) -> None:
        if not self.counts:
            return
        rows: dict[tuple[int, date], dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIGURES, 0))
        for (loop_id, day, figure), n in self.counts.items():
            rows[(loop_id, day)][figure] += n
        table = connection.ops.quote_name(LoopDay._meta.db_table)
        values, params = [], []
        for (loop_id, day), figures in sorted(rows.items()):
            values.append("(%s, %s, %s, %s, %s, %s)")
            params += [loop_id, day, *(figures[f] for f in FIGURES)]
        updates = ", ".join(f"{f} = {table}.{f} + excluded.{f}" for f in FIGURES)
        # Only the model's own table and column names are interpolated; values are parameters.
        sql = (
            f"INSERT INTO {table} (loop_id, day, {', '.join(FIGURES)}) VALUES {', '.join(values)} "  # noqa: S608
            f"ON CONFLICT (loop_id, day) DO UPDATE SET {updates}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        self.counts.clear()


def loop_totals(loop_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """{loop id: {started, emailed, exited, unsubscribed}} over all days, in one query."""
    ids = list(loop_ids)
    totals = {pk: dict.fromkeys(FIGURES, 0) for pk in ids}
    if not ids:
        return totals
    for row in LoopDay.objects.filter(loop_id__in=ids).values("loop_id").annotate(**{f: Sum(f) for f in FIGURES}):
        totals[row["loop_id"]] = {f: row[f] or 0 for f in FIGURES}
    return totals


def loop_days(loop_id: int, days: int = 30) -> list[dict]:
    """The last `days` UTC days, oldest first, each {day, started, emailed, exited, unsubscribed}."""
    today = clock.now().date()
    first = today - timedelta(days=days - 1)
    found = {row["day"]: row for row in LoopDay.objects.filter(loop_id=loop_id, day__gte=first).values("day", *FIGURES)}
    return [
        found.get(first + timedelta(days=n)) or {"day": first + timedelta(days=n), **dict.fromkeys(FIGURES, 0)}
        for n in range(days)
    ]
