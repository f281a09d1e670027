"""Claiming inbox rows: find, lease and read a chunk of due rows in one statement.

A claim pushes `next_attempt_at` out by a lease and marks the rows processing: if the worker
dies, the rows come due again by themselves once the lease runs out. On PostgreSQL a worker
claims within one lane it holds (integrations/lanes.py), and the inner SELECT skips rows any
other worker has locked. SQLite runs one writer at a time, so one statement is enough there.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from integrations.lanes import LANES, lane_held, lanes_supported
from integrations.models import InboxMessage, InboxStatus, Integration

# A claimed row comes due again by itself when its lease runs out, so a killed worker's rows
# come back within LEASE. On PostgreSQL a worker holds its lane for the whole chunk, so no
# other worker can claim the rows of a chunk that is merely slow: the lease can be short.
# SQLite has no lanes, so it keeps a lease longer than any chunk takes.
LEASE = timedelta(seconds=30)
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


def claim(limit: int, *, lane: int | None = None) -> list[InboxMessage]:
    """Take up to `limit` due rows (of one lane, if given), leased, in the order they happened."""
    assert InboxMessage._meta.db_table == "integrations_inboxmessage"
    now = timezone.now()
    params: list = [InboxStatus.PROCESSING, now + (LEASE if lanes_supported() else UNLANED_LEASE)]
    if lane is not None:
        params.append(lane)
    params += [now, limit]
    lock = "FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    columns = ", ".join(connection.ops.quote_name(f.column) for f in InboxMessage._meta.concrete_fields)
    # Only the model's own quoted column names and fixed clauses are interpolated.
    sql = _CLAIM_SQL.format(lane="lane = %s AND" if lane is not None else "", lock=lock, columns=columns)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Walk the due index in id order and stop at `limit`, whatever the statistics say.
            # Right after a burst they can claim a lane holds a few rows, and the planner then
            # fetched and sorted every due row of the lane (all of a backfill) for each chunk.
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true)"
                )
        rows = list(InboxMessage.objects.raw(sql, params))
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
