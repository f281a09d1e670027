"""Capture requests per minute per IP address and per visitor, counted in the database.

One upsert (both keys in one statement) per request, shared by every web process; old minutes
are deleted by whichever process first notices a new minute. The limit is the integration's
`capture_rate_limit` (0 turns it off).
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from django.db import connection

from integrations.capture.models import CaptureWindow

_pruned = {"minute": None}
_lock = threading.Lock()


def over_limit(*, keys: list[str], limit: int, now: datetime) -> int | None:
    """Count this request under each key; the seconds until the next minute when one is over
    `limit`, else None."""
    if limit <= 0 or not keys:
        return None
    window = now.replace(second=0, microsecond=0)
    quote = connection.ops.quote_name
    table = quote(CaptureWindow._meta.db_table)
    values = ", ".join(["(%s, %s, 1)"] * len(keys))
    params: list = []
    stamp = connection.ops.adapt_datetimefield_value(window)
    for key in keys:
        params.extend([key[:200], stamp])
    # Only the quoted model table name is interpolated; values are parameters.
    key, minute, count = quote("key"), quote("minute"), quote("count")
    sql = (
        f"INSERT INTO {table} ({key}, {minute}, {count}) VALUES {values} "  # noqa: S608
        f"ON CONFLICT ({key}, {minute}) DO UPDATE SET {count} = {table}.{count} + 1 "
        f"RETURNING {count}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        counts = [row[0] for row in cursor.fetchall()]
    _prune(window)
    if max(counts) > limit:
        return max(1, int((window + timedelta(minutes=1) - now).total_seconds()) + 1)
    return None


def _prune(window: datetime) -> None:
    with _lock:
        if _pruned["minute"] == window:
            return
        _pruned["minute"] = window
    CaptureWindow.objects.filter(minute__lt=window - timedelta(minutes=2)).delete()
