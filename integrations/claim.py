"""Claiming inbox rows: find and read a chunk of due rows in one statement.

On PostgreSQL a worker claims within one lane it holds (integrations/lanes.py): the lane's
session lock is the lease. No other worker can claim a held lane's rows, and a worker that
dies drops its session and the lock with it, so its rows are due again at once, as they were:
the claim writes nothing. (It used to mark the rows processing with a 30 s lease: an UPDATE of
every row through the inbox's indexes, a fifth of the drain's time, for a guarantee the lane
already gives.) A chunk's effects and its rows' new status commit in one transaction, so a
crash leaves a row either applied and finished or untouched.

SQLite has no lanes: there a claim pushes `next_attempt_at` out by a lease and marks the rows
processing in one statement, and a dead worker's rows come due when the lease runs out.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from common.bulk import instances
from integrations.lanes import LANES, lane_held, lanes_supported
from integrations.models import InboxMessage, InboxStatus, Integration

# SQLite: a claimed row comes due again by itself when its lease runs out, longer than any
# chunk takes.
UNLANED_LEASE = timedelta(minutes=5)

_CLAIM_SQL = """
UPDATE integrations_inboxmessage
SET status = %s, next_attempt_at = %s, attempts = attempts + 1
WHERE id IN (
    SELECT id FROM integrations_inboxmessage
    WHERE {lane} next_attempt_at IS NOT NULL AND next_attempt_at <= %s
    ORDER BY id LIMIT %s {lock}
)
RETURNING {columns}
"""

_LANE_SQL = """
SELECT {columns} FROM integrations_inboxmessage
WHERE lane = %s AND next_attempt_at IS NOT NULL AND next_attempt_at <= %s
ORDER BY id LIMIT %s
"""


def claim(limit: int, *, lane: int | None = None) -> list[InboxMessage]:
    """Take up to `limit` due rows (of one lane this worker holds, on PostgreSQL), in the order
    they happened. Each row's `attempts` counts this claim; the drain writes it with the row's
    new status."""
    assert InboxMessage._meta.db_table == "integrations_inboxmessage"
    now = timezone.now()
    columns = ", ".join(connection.ops.quote_name(f.column) for f in InboxMessage._meta.concrete_fields)
    if lane is not None and lanes_supported():
        # Only the model's own quoted column names are interpolated.
        sql = _LANE_SQL.format(columns=columns)
        with transaction.atomic():
            # Walk the due index in id order and stop at `limit`, whatever the statistics say.
            # Right after a burst they can claim a lane holds a few rows, and the planner then
            # fetched and sorted every due row of the lane (all of a backfill) for each chunk.
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true)"
                )
                cursor.execute(sql, [lane, now, limit])
                rows = instances(InboxMessage, cursor.fetchall(), connection)
        for row in rows:
            row.attempts += 1
    else:
        lock = "FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
        sql = _CLAIM_SQL.format(lane="lane = %s AND" if lane is not None else "", lock=lock, columns=columns)
        params: list = [InboxStatus.PROCESSING, now + UNLANED_LEASE]
        if lane is not None:
            params.append(lane)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [*params, now, limit])
            rows = instances(InboxMessage, cursor.fetchall(), connection)
    if rows:
        integrations = Integration.objects.in_bulk({row.integration_id for row in rows})
        for row in rows:
            row.integration = integrations[row.integration_id]
    # One person's messages in the order they happened; stamps guard across chunks.
    rows.sort(key=lambda r: (r.timestamp, r.id))
    return rows


@contextmanager
def claimed(limit: int) -> Iterator[list[InboxMessage]]:
    """A chunk of due rows, held for the block: the lane stays this worker's until it ends.

    Lanes are tried from a random one, so concurrent workers spread over them; a lane another
    worker holds is passed over. Yields an empty list when no lane this worker could hold has
    due rows.
    """
    if not lanes_supported():
        yield claim(limit)
        return
    first = random.randrange(LANES)  # noqa: S311 - spreading work, not security
    for offset in range(LANES):
        lane = (first + offset) % LANES
        with lane_held(lane) as held:
            if not held:
                continue
            rows = claim(limit, lane=lane)
            if rows:
                yield rows
                return
    yield []
