"""Running due work: claim a batch, handle it under a heartbeat, finish it in bulk.

`run_due` is what `manage.py process_due` and the django-q2 task both call. It takes the kinds
of work in turn, a batch (or, for a runner, a slice of at most RUNNER_SLICE seconds) each, so a
backlog of one kind never starves the others, until nothing is due or the time budget is spent.
"Due" means due when the run started: an item that fails and is retried a moment later waits
for the next run instead of spinning in this one.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction

from common import clock
from common.bulk import bulk_insert, bulk_update
from common.workqueue import registry
from common.workqueue.claim import Claim, Heartbeat, claim
from common.workqueue.errors import ERROR_LIMIT, RESPONSE_LIMIT, Outcome, WorkError
from common.workqueue.models import Attempt, AttemptOutcome, WorkItem
from common.workqueue.registry import WorkType
from common.workqueue.sql import write_held

log = logging.getLogger(__name__)

RUNNER_SLICE = 5.0
MIN_RETRY_SECONDS = 1.0
QUEUE_FIELDS = ["next_attempt_at", "last_error", "claimed_by", "finished_at"]
COUNT_NAMES = ("done", "skipped", "retrying", "failed")
LOST = "its worker stopped before finishing (the lease ran out); the item was taken again"
LATE = " [finished after its lease ran out: another worker had taken the item, so this result was not applied]"


def worker_id() -> str:
    """Who holds a claim: host, process and a token, so two runs in one process differ too."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(3)}"


def empty_counts() -> dict[str, int]:
    return dict.fromkeys(COUNT_NAMES, 0)


def run_batch(
    work_type: WorkType,
    *,
    due_by: datetime,
    now: Callable[[], datetime] = clock.now,
    worker: str | None = None,
    limit: int | None = None,
) -> dict[str, int] | None:
    """Claim and run one batch of `work_type`; its counts, or None when nothing was due."""
    held = claim(work_type, limit=limit or work_type.batch_size, due_by=due_by, now=now(), worker=worker or worker_id())
    if not held.items:
        return None
    outcomes: dict[int, Outcome] = {}
    to_run = []
    for item in held.items:
        if item.pk in held.lapsed and item.attempts > work_type.max_attempts:
            # Its last allowed attempt was lost with its worker (perhaps this item killed it).
            outcomes[item.pk] = Outcome.failure(
                WorkError(f"gave up: attempt {item.attempts - 1} did not finish", permanent=True)
            )
        else:
            to_run.append(item)
    if to_run:
        with Heartbeat(held):
            outcomes.update(_handle(work_type, to_run, now))
    return finish(held, outcomes, now=now())


def _handle(work_type: WorkType, items: list[WorkItem], now: Callable[[], datetime]) -> dict[int, Outcome]:
    started_at, started = now(), time.monotonic()
    try:
        outcomes = dict(work_type.handle_batch(items))
    except WorkError as error:
        outcomes = dict.fromkeys((item.pk for item in items), Outcome.failure(error))
    except Exception as error:  # noqa: BLE001 - not the items' fault: retry them, keep running others
        log.exception("%s batch failed", work_type.name)
        outcomes = dict.fromkeys((item.pk for item in items), Outcome.failure(f"{type(error).__name__}: {error}"))
    duration_ms = round((time.monotonic() - started) * 1000)
    for item in items:
        outcome = outcomes.get(item.pk) or Outcome.failure("the handler gave no outcome for this item")
        outcomes[item.pk] = replace(
            outcome,
            started_at=outcome.started_at or started_at,
            duration_ms=outcome.duration_ms if outcome.duration_ms is not None else duration_ms,
        )
    return outcomes


def finish(held: Claim, outcomes: Mapping[int, Outcome], *, now: datetime) -> dict[str, int]:
    """Write every item's next state and the batch's Attempt rows: a few statements in all.

    Only rows this claim still holds are written (fenced on worker and claim time): if the
    lease ran out and another worker took a row meanwhile, its result stands, and this
    attempt is logged with a note instead.
    """
    work_type = held.work_type
    content_type = ContentType.objects.get_for_model(work_type.model)
    counts = empty_counts()
    attempts: list[Attempt] = []
    by_pk = {item.pk: item for item in held.items}
    for pk, (lapsed_by, lapsed_at) in held.lapsed.items():
        number = by_pk[pk].attempts - 1
        attempts.append(
            Attempt(
                content_type=content_type,
                object_id=pk,
                number=number,
                started_at=lapsed_at or held.claimed_at,
                outcome=AttemptOutcome.AMBIGUOUS,
                error=LOST,
                worker=lapsed_by,
            )
        )
    counts["recovered"] = len(held.lapsed)
    results = {item.pk: _next_state(work_type, item, outcomes[item.pk], now) for item in held.items}
    with transaction.atomic():
        mine = _write_held(held, [*QUEUE_FIELDS, *work_type.update_fields])
        for item in held.items:
            outcome, result = outcomes[item.pk], results[item.pk]
            counts[result_count(result)] += 1
            error = outcome.error[:ERROR_LIMIT]
            if item.pk not in mine:
                error += LATE
            attempts.append(
                Attempt(
                    content_type=content_type,
                    object_id=item.pk,
                    number=item.attempts,
                    started_at=outcome.started_at or held.claimed_at,
                    duration_ms=outcome.duration_ms,
                    outcome=result,
                    status_code=outcome.status_code,
                    response=(outcome.response or "")[:RESPONSE_LIMIT],
                    error=error,
                    worker=held.worker,
                )
            )
        bulk_insert(Attempt, attempts)
    if len(mine) < len(held.items):
        log.warning("%d %s rows were taken by another worker first", len(held.items) - len(mine), work_type.name)
    return counts


def _write_held(held: Claim, fields: list[str]) -> set[int]:
    """Write the items this claim still holds (one statement on PostgreSQL); their ids."""
    model = held.work_type.model
    if connection.vendor == "postgresql":
        return write_held(model, held.items, fields, worker=held.worker, claimed_at=held.claimed_at)
    # SQLite runs one writer at a time: reading which rows are still held, then writing them, is safe.
    mine = set(
        model.objects.filter(
            pk__in=[item.pk for item in held.items], claimed_by=held.worker, claimed_at=held.claimed_at
        ).values_list("pk", flat=True)
    )
    bulk_update(model, [item for item in held.items if item.pk in mine], fields)
    return mine


def result_count(result: str) -> str:
    return {
        AttemptOutcome.OK: "done",
        AttemptOutcome.SKIPPED: "skipped",
        AttemptOutcome.RETRY: "retrying",
        AttemptOutcome.FAILED: "failed",
    }.get(result, "retrying")


def _next_state(work_type: WorkType, item: WorkItem, outcome: Outcome, now: datetime) -> str:
    """Set the item's queue fields from its outcome; the attempt's recorded outcome.

    An ambiguous error is logged as such; the item itself is retried or failed like any error,
    and the count says which (an ambiguous attempt the item will retry counts as retrying).
    """
    item.claimed_by = ""
    if outcome.kind in ("ok", "skipped"):
        item.next_attempt_at, item.finished_at, item.last_error = None, now, ""
        return AttemptOutcome.OK if outcome.kind == "ok" else AttemptOutcome.SKIPPED
    error = outcome.error or "failed"
    item.last_error = error[:ERROR_LIMIT]
    if outcome.permanent or item.attempts >= work_type.max_attempts:
        item.next_attempt_at, item.finished_at = None, now
        item.work_failed(item.last_error)
        result = AttemptOutcome.FAILED
    else:
        item.next_attempt_at, item.finished_at = now + timedelta(seconds=retry_delay(work_type, item, outcome)), None
        result = AttemptOutcome.RETRY
    if outcome.ambiguous:
        # The log says "ambiguous"; the count follows what happens to the item.
        return AttemptOutcome.AMBIGUOUS if result == AttemptOutcome.RETRY else result
    return result


def retry_delay(work_type: WorkType, item: WorkItem, outcome: Outcome) -> float:
    """The partner's Retry-After when it gave one (capped), else the type's backoff; at least
    MIN_RETRY_SECONDS, so a retry is never due within the run that scheduled it."""
    if outcome.retry_after is not None:
        delay = min(float(outcome.retry_after), work_type.max_retry_after)
    else:
        delay = work_type.backoff.delay(item.attempts)
    return max(delay, MIN_RETRY_SECONDS)


def run_due(
    *, now: datetime | None = None, types: Iterable[str] | None = None, max_seconds: float = 50.0
) -> dict[str, dict[str, int]]:
    """Run every kind of due work (or those named in `types`) once; counts per kind.

    `now` pins the run's clock (due cutoff, leases, retries); by default the cutoff is when the
    run starts and the rest reads common.clock as it goes.
    """
    names = list(types) if types is not None else registry.names()
    unknown = [name for name in names if registry.get_type(name) is None and registry.get_runner(name) is None]
    if unknown:
        raise ValueError(f"no such kind of work: {', '.join(unknown)} (known: {', '.join(registry.names())})")
    due_by = now or clock.now()
    tick: Callable[[], datetime] = (lambda: now) if now is not None else clock.now
    worker = worker_id()
    results: dict[str, dict[str, int]] = {}
    active = list(dict.fromkeys(names))
    deadline = time.monotonic() + max_seconds
    while active:
        for name in list(active):
            left = deadline - time.monotonic()
            if left <= 0:
                return _complete(results, names)
            runner = registry.get_runner(name)
            if runner is not None:
                got = runner.func(max_seconds=min(left, RUNNER_SLICE))
                _add(results.setdefault(name, {}), got)
                if not any(got.values()):
                    active.remove(name)
                continue
            counts = run_batch(registry.get_type(name), due_by=due_by, now=tick, worker=worker)
            if counts is None:
                active.remove(name)
            else:
                _add(results.setdefault(name, empty_counts()), counts)
    return _complete(results, names)


def _add(total: dict[str, int], counts: Mapping[str, int]) -> None:
    for key, value in counts.items():
        total[key] = total.get(key, 0) + value


def _complete(results: dict[str, dict[str, int]], names: list[str]) -> dict[str, dict[str, int]]:
    """Every kind asked for appears, in order, even when it had nothing due."""
    return {name: results.get(name) or ({} if registry.get_runner(name) else empty_counts()) for name in names}
