"""EMAIL_RATE_LIMIT ("300/minute", "10000/hour"; empty = off), honoured across workers.

Windows are aligned to the epoch (every minute on the minute for "N/minute"). Each window is
a row counting the sends it has given out. A batch reserves its places in one short
transaction: first in the current window, and when that is full, in the next windows with room.
A send placed in a later window waits for it (its row is due at the window's start) and keeps
its place, so a backlog of 10,000 at 300 a minute is spread over 34 windows once, instead of
being claimed and turned away every minute. Reservations are serialized by a lock row (the
epoch window) taken FOR UPDATE: a few milliseconds per batch of a hundred.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from campaigns.email.models import EmailRateWindow

RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(second|minute|hour|day)s?\s*$")
UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
KEEP = timedelta(days=2)


def parse_rate(text: str) -> tuple[int, int] | None:
    """(sends, seconds) from "300/minute" or "1000/10minutes"; None when empty (no limit)."""
    if not (text or "").strip():
        return None
    match = RATE_RE.match(text.lower())
    if not match or int(match.group(1)) < 1:
        raise ImproperlyConfigured(
            f"EMAIL_RATE_LIMIT must look like 300/minute, 10000/hour or 50/10seconds, not {text!r}"
        )
    count, times, unit = int(match.group(1)), int(match.group(2) or 1), match.group(3)
    return count, max(times, 1) * UNITS[unit]


def current_limit() -> tuple[int, int] | None:
    return parse_rate(getattr(settings, "EMAIL_RATE_LIMIT", ""))


def window_start(now: datetime, seconds: int) -> datetime:
    elapsed = int((now - EPOCH).total_seconds())
    return EPOCH + timedelta(seconds=elapsed - elapsed % seconds)


def rate_reserve(count: int, *, now: datetime) -> list[datetime | None]:
    """For each of `count` sends, in order, the start of the window it may go in: the current
    window while it has room, then later ones. All None when there is no limit."""
    limit = current_limit()
    if limit is None or count <= 0:
        return [None] * count
    per_window, seconds = limit
    step = timedelta(seconds=seconds)
    current = window_start(now, seconds)
    with transaction.atomic():
        EmailRateWindow.objects.bulk_create([EmailRateWindow(start=EPOCH, used=0)], ignore_conflicts=True)
        EmailRateWindow.objects.select_for_update().get(start=EPOCH)
        rows = {row.start: row for row in EmailRateWindow.objects.filter(start__gte=current)}
        places: list[datetime | None] = []
        new, changed = [], []
        start = current
        while len(places) < count:
            row = rows.get(start)
            if row is None:
                row = rows[start] = EmailRateWindow(start=start, used=0)
                new.append(row)
            take = min(per_window - row.used, count - len(places))
            if take > 0:
                row.used += take
                places += [start] * take
                if row.pk is not None:
                    changed.append(row)
            start += step
        if new:
            EmailRateWindow.objects.bulk_create([row for row in new if row.used])
        if changed:
            EmailRateWindow.objects.bulk_update(changed, ["used"])
        if any(row.start == current for row in new):
            # The first reservation in a new window: the old windows are no longer needed.
            EmailRateWindow.objects.filter(start__gt=EPOCH, start__lt=current - KEEP).delete()
    return places


def window_end(start: datetime) -> datetime:
    limit = current_limit()
    return start + timedelta(seconds=limit[1] if limit else 0)
