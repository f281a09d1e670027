"""Claiming due rows with a lease, and keeping the lease while the batch runs.

A claim is one statement, as for the inbox (common/workqueue/sql.py): it finds due rows in (next_attempt_at, id) order,
locks them with FOR UPDATE SKIP LOCKED so concurrent claimers pass over each other's rows,
pushes next_attempt_at out by the lease, counts the attempt and records the worker, and returns
the rows. SQLite runs one writer at a time (its transactions start IMMEDIATE here), so a select
and an update in one transaction do the same.

Recovery of a dead worker's rows: a short lease, renewed by heartbeats. The lease is 30 s by
default (WORKQUEUE_LEASE_SECONDS); while a batch runs, a thread renews it every third of that.
A worker that is killed stops renewing, and its rows are due again at most one lease after its
last heartbeat: within 30 s of the kill, whatever the batch's length. The other way, asking
PostgreSQL whether the claimer's backend pid is still connected (pg_stat_activity), was
rejected: it works on PostgreSQL only, a pid is reused, a connection pooler hides which backend
a worker has, and a worker that hangs but stays connected would keep its rows for ever. The
heartbeat costs one UPDATE per running batch every 10 s, and it stops after the type's
`timeout`, so a stuck handler lets go of its rows too.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DatabaseError, connection, transaction

from common import clock
from common.workqueue.models import WorkItem
from common.workqueue.registry import WorkType
from common.workqueue.sql import claim_rows

log = logging.getLogger(__name__)


@dataclass
class Claim:
    """The rows one worker holds: `lapsed` are those whose previous worker was lost."""

    work_type: WorkType
    items: list[WorkItem]
    worker: str
    claimed_at: datetime
    lapsed: dict[int, tuple[str, datetime | None]]


def claim(work_type: WorkType, *, limit: int, due_by: datetime, now: datetime, worker: str) -> Claim:
    """Take up to `limit` rows due by `due_by`, leased from `now`, in due order."""
    model = work_type.model
    lease_until = now + timedelta(seconds=work_type.lease_seconds)
    if connection.vendor == "postgresql":
        items, lapsed = claim_rows(model, limit=limit, due_by=due_by, lease_until=lease_until, now=now, worker=worker)
    else:
        items, lapsed = _claim_plain(model, limit, due_by, lease_until, now, worker)
    items.sort(key=lambda item: item.pk)
    return Claim(work_type, items, worker, now, lapsed)


def _claim_plain(model, limit, due_by, lease_until, now, worker):
    from django.db.models import F

    with transaction.atomic():
        due = list(
            model.objects.filter(next_attempt_at__lte=due_by)
            .order_by("next_attempt_at", "pk")
            .values_list("pk", "claimed_by", "claimed_at")[:limit]
        )
        pks = [pk for pk, _, _ in due]
        if not pks:
            return [], {}
        model.objects.filter(pk__in=pks).update(
            next_attempt_at=lease_until, attempts=F("attempts") + 1, claimed_by=worker, claimed_at=now
        )
        items = list(model.objects.filter(pk__in=pks))
    return items, {pk: (by, at) for pk, by, at in due if by}


def renew(claim_: Claim, pks: list[int] | None = None) -> int:
    """Push the lease of rows this claim still holds to now + lease; returns how many."""
    lease_until = clock.now() + timedelta(seconds=claim_.work_type.lease_seconds)
    return claim_.work_type.model.objects.filter(
        pk__in=pks if pks is not None else [item.pk for item in claim_.items],
        claimed_by=claim_.worker,
        claimed_at=claim_.claimed_at,
    ).update(next_attempt_at=lease_until)


class Heartbeat:
    """Renews a claim's lease from a thread of its own while the batch runs.

    The thread has its own database connection (Django's are per thread) and closes it when
    the batch ends. It first renews after a third of the lease, so short batches never write.
    """

    def __init__(self, claim_: Claim) -> None:
        self.claim = claim_
        self.interval = claim_.work_type.lease_seconds / 3
        self.timeout = claim_.work_type.timeout
        self.renewals = 0
        self._stop = threading.Event()
        self._pks = [item.pk for item in claim_.items]
        self._thread = threading.Thread(target=self._run, name=f"heartbeat {claim_.work_type.name}", daemon=True)

    def __enter__(self) -> Heartbeat:
        if self._pks:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        started = time.monotonic()
        try:
            while not self._stop.wait(self.interval):
                if time.monotonic() - started > self.timeout:
                    log.warning(
                        "%s batch still running after %.0f s: its rows are let go and will be retried",
                        self.claim.work_type.name,
                        self.timeout,
                    )
                    return
                try:
                    renew(self.claim, self._pks)
                    self.renewals += 1
                except DatabaseError:
                    # The next beat tries again; the lease covers two missed beats.
                    log.warning("could not renew the lease of a %s batch", self.claim.work_type.name, exc_info=True)
        finally:
            connection.close()
