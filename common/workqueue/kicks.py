"""Run due work soon after a commit, instead of at the next scheduled minute.

django-q2 schedules have minute resolution: alone, an email queued now would wait up to a
minute. Apps that create due rows call `kick_on_commit("email_send")` (or
`transaction.on_commit(lambda: kick("email_send"))`), which queues a `common.tasks.run_due`
for those kinds once the rows are visible to workers.

Kicks are rate limited per process and kind: the first goes at once; those within the next
KICK_INTERVAL seconds are folded into one trailing kick at the end of the interval, so a burst
of commits queues two tasks, not thousands, and no commit is left for the schedule to find.
The schedule stays the safety net: a kick that cannot be queued loses nothing.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import transaction

log = logging.getLogger(__name__)

KICK_INTERVAL = 0.5

_lock = threading.Lock()
_last: dict[tuple[str, ...], float] = {}
_pending: set[tuple[str, ...]] = set()


def kick_on_commit(*names: str) -> None:
    """Kick these kinds of work once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: kick(*names))


def kick(*names: str) -> None:
    """Queue a run of these kinds of work (every kind when none is named)."""
    key = tuple(sorted(set(names)))
    if settings.Q_CLUSTER.get("sync"):
        _send(key)  # runs in the foreground: nothing to fold
        return
    with _lock:
        wait = _last.get(key, float("-inf")) + KICK_INTERVAL - time.monotonic()
        if wait <= 0:
            _last[key] = time.monotonic()
        elif key in _pending:
            return
        else:
            _pending.add(key)
    if wait <= 0:
        _send(key)
        return
    timer = threading.Timer(wait, _send_trailing, args=(key,))
    timer.daemon = True
    timer.start()


def _send_trailing(key: tuple[str, ...]) -> None:
    with _lock:
        _pending.discard(key)
        _last[key] = time.monotonic()
    try:
        _send(key)
    finally:
        from django.db import connection

        connection.close()  # the ORM broker may have opened one in this thread


def _send(key: tuple[str, ...]) -> None:
    try:
        from django_q.tasks import async_task

        async_task(
            "common.tasks.run_due",
            list(key) or None,
            task_name=f"run due: {', '.join(key) or 'all'}",
            group="workqueue",
        )
    except Exception:  # noqa: BLE001 - the schedule runs it anyway
        log.warning(
            "could not queue a run of %s; the schedule will run it", ", ".join(key) or "all work", exc_info=True
        )
