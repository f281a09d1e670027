"""Inbox lanes: each person's messages go to one of a few lanes, drained by one worker at a time.

Two workers draining the same people at once wait on each other's contact row locks and race
to create the same new contacts, so a second worker made the drain slower, not faster. A lane
is held with a PostgreSQL session advisory lock while its chunk is applied: workers share the
inbox lane by lane, and one person's messages are applied by one worker, in order. A worker
that dies drops its session, and with it the lock.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DatabaseError, connection

LANES = 8
# The first key of pg_try_advisory_lock(int, int): a number of our own, so the lane locks
# cannot collide with another application's advisory locks on the same database.
LOCK_CLASS = 0x5759  # "SY"
VISITOR_LOCK_CLASS = 0x5756


def _crc(text: str) -> int:
    """A hash that is the same in every process and release (Python's hash() is not)."""
    return zlib.crc32(text.encode("utf-8", "surrogatepass"))


def lane_of(user_id: str, anonymous_id: str) -> int:
    """The lane of a message: by userId, else anonymousId."""
    return _crc(user_id or anonymous_id or "") % LANES


def lock_anonymous_ids(anonymous_ids: set[str]) -> None:
    """Hold a lock per anonymousId until the transaction ends (PostgreSQL; SQLite has one
    writer at a time). Taken in one order, so two workers cannot deadlock on them."""
    if not lanes_supported() or not anonymous_ids:
        return
    keys = sorted({_crc(a) - 2**31 for a in anonymous_ids})  # into int4's range
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, k) FROM unnest(%s::int[]) AS k ORDER BY k", [VISITOR_LOCK_CLASS, keys]
        )


def lanes_supported() -> bool:
    return connection.vendor == "postgresql"


@contextmanager
def lane_held(lane: int) -> Iterator[bool]:
    """Try to hold `lane` for the block; yields whether this worker got it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_CLASS, lane])
        held = bool(cursor.fetchone()[0])
    try:
        yield held
    finally:
        if held:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_CLASS, lane])
            except DatabaseError:
                # The connection is gone, and the session's locks went with it.
                connection.close()
