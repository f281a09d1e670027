"""The outbox's batch handler: due items, grouped per integration, to `/v1/batch`.

For each integration in the claimed batch:
1. the rules (rules.py) skip what must not go, and a person's item waits while an earlier item
   of theirs is still queued (identify before tracks);
2. Grow payloads are built now, from the contact and the visitor as they are when due;
3. the messages go in order, in requests under Segment's limits, over one keep-alive session.

Integrations are posted side by side (a thread each, HTTP only), and each has a time budget in
the batch: one slow or failing endpoint never holds another integration's messages. Within an
integration, a retryable failure stops its later requests in this batch (they would fail too,
and a person's later messages must not overtake earlier ones). A 400 or 413 for a request of
many messages is split in halves to find the message at fault, so one bad message does not
fail its neighbours. Each integration's share of the batch is a SyncRun with its requests.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson
from django.conf import settings
from django.db.models import Min

from common import clock
from common.workqueue import Outcome, WorkError
from integrations.outbound import client
from integrations.outbound.models import FailureType, OutboxItem, OutboxSource, OutboxStatus, SyncRun, SyncTrigger
from integrations.outbound.payloads import grow_group, grow_identify
from integrations.outbound.rules import Facts, Options, load_facts, skip_reason

log = logging.getLogger(__name__)

WORK_TYPE = "segment_outbox"
# Extra requests one integration may spend, per batch, splitting rejected requests in halves.
MAX_SPLIT_REQUESTS = 24
REQUEST_LOG_LIMIT = 50


@dataclass
class Plan:
    """One integration's share of a batch: what to post, and what came of it."""

    integration: object
    write_key: str
    endpoint: str
    items: list[OutboxItem]  # to send, in order
    encoded: list[bytes]
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    requests: list[dict] = field(default_factory=list)
    poster: Poster = field(init=False)

    def __post_init__(self) -> None:
        self.poster = Poster(self)


def send_outbox(items: list[OutboxItem]) -> dict[int, Outcome]:
    """The work type's batch_handler: an Outcome per item (domain fields set on the items)."""
    from integrations.models import Integration

    started_at = clock.now()
    outcomes: dict[int, Outcome] = {}
    groups: dict[int, list[OutboxItem]] = defaultdict(list)
    for item in sorted(items, key=lambda i: i.pk):
        groups[item.integration_id].append(item)
    integrations = Integration.objects.in_bulk(list(groups))
    plans = []
    try:
        for integration_id, group in groups.items():
            plan = prepare(integrations[integration_id], group, outcomes)
            if plan is not None:
                plans.append(plan)
    finally:
        for plan in plans:
            plan.poster.close()  # waits for its last request
    for plan in plans:
        outcomes.update(plan.outcomes)
    runs_record(groups, integrations, outcomes, plans, started_at)
    kick_for_retries(outcomes)
    return outcomes


def prepare(integration, group: list[OutboxItem], outcomes: dict[int, Outcome]) -> Plan | None:
    """Apply the rules and build the messages in order; each request's worth goes to the
    integration's poster as soon as it is full, so posting overlaps building. None when there
    is nothing to post."""
    behaviour = Options(integration.behaviour())
    facts = load_facts(integration, group)
    now = clock.now()
    waiting = earlier_queued(integration, group)
    write_key = behaviour.option("write_key") if integration.kind == "segment_source" else ""
    plan: Plan | None = None
    chunk = client.Chunker()
    for item in group:
        reason = skip_reason(behaviour, item, facts)
        if reason:
            item.status, item.error, item.response = OutboxStatus.SKIPPED, reason, ""
            outcomes[item.pk] = Outcome.skipped(reason)
            continue
        first = waiting.get(item.person_key) if item.type != "identify" else None
        if first is not None and first[0] < item.pk:
            delay = max((first[1] - now).total_seconds(), 0) + 1 if first[1] else 5
            outcomes[item.pk] = Outcome.failure(
                WorkError(f"waits for an earlier message of the same person (item {first[0]})", retry_after=delay)
            )
            continue
        if not write_key:
            fail(item, FailureType.NOT_CONFIGURED, "no Write Key is set on the integration", "")
            outcomes[item.pk] = Outcome.failure(WorkError(item.error, permanent=True))
            continue
        message = build(item, behaviour, facts)
        data = orjson.dumps(message)
        if len(data) > client.MAX_MESSAGE_BYTES:
            fail(item, FailureType.TOO_LARGE, f"the message is {len(data):,} bytes; Segment takes up to 32 KB", "")
            outcomes[item.pk] = Outcome.failure(WorkError(item.error, permanent=True))
            continue
        item.payload = message
        if plan is None:
            plan = Plan(integration, write_key, behaviour.option("endpoint"), [], [])
        full = chunk.add(len(plan.encoded), len(data))
        if full is not None:
            plan.poster.submit(*full)
        plan.items.append(item)
        plan.encoded.append(data)
    if plan is not None:
        plan.poster.submit(*chunk.rest(len(plan.encoded)))
    return plan


def earlier_queued(integration, group: list[OutboxItem]) -> dict[str, tuple[int, datetime | None]]:
    """Per person in the batch: their first queued item that is not in this batch (and when it
    is due), if any. A later item of theirs waits for it.

    An identify never waits (it is what the others wait for), so a batch of identifies (a
    backfill of contacts) needs no look-up at all."""
    keys = {item.person_key for item in group if item.type != "identify"}
    if not keys:
        return {}
    pks = [item.pk for item in group]
    rows = (
        OutboxItem.objects.filter(integration_id=integration.pk, status=OutboxStatus.QUEUED, person_key__in=keys)
        .exclude(pk__in=pks)
        .values("person_key")
        .annotate(first=Min("id"), due=Min("next_attempt_at"))
    )
    return {row["person_key"]: (row["first"], row["due"]) for row in rows}


def build(item: OutboxItem, behaviour, facts: Facts) -> dict:
    if item.source == OutboxSource.GROW:
        contact = facts.contacts[item.contact_id]
        visitor = facts.visitors.get(item.contact_id)
        if item.type == "group":
            return grow_group(
                mid=item.message_id, contact=contact, group_id=item.payload.get("groupId", ""), at=item.event_at
            )
        return grow_identify(mid=item.message_id, contact=contact, visitor=visitor, at=item.event_at)
    return item.payload


def fail(item: OutboxItem, failure_type: str, error: str, response: str) -> None:
    item.status, item.failure_type, item.error, item.response = (
        OutboxStatus.FAILED,
        failure_type,
        error[:2000],
        response,
    )


# --- posting (threads: HTTP only, no database) -------------------------------------------------
class Poster:
    """Posts one integration's requests in order, from a thread of its own (HTTP only, no
    database), while the batch goes on being built. It stops at the first retryable failure
    (the later requests would fail too, and a person's later messages must not overtake
    earlier ones) and when the integration's time in the batch runs out."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.ranges: queue.SimpleQueue = queue.SimpleQueue()
        self.thread: threading.Thread | None = None
        self.deadline = 0.0
        self.stopped: client.Answer | None = None
        self.splits = {"splits": MAX_SPLIT_REQUESTS}

    def submit(self, start: int, end: int) -> None:
        if end <= start:
            return
        if self.thread is None:
            self.deadline = time.monotonic() + settings.OUTBOUND_INTEGRATION_BUDGET
            self.thread = threading.Thread(target=self._run, name="outbound-poster", daemon=True)
            self.thread.start()
        self.ranges.put((start, end))

    def close(self) -> None:
        if self.thread is not None:
            self.ranges.put(None)
            self.thread.join()

    def _run(self) -> None:
        while (span := self.ranges.get()) is not None:
            start, end = span
            try:
                if self.stopped is not None:
                    _defer(self.plan, [span], f"not sent: an earlier request failed ({self.stopped.describe()})", None)
                elif time.monotonic() > self.deadline:
                    _defer(self.plan, [span], "not sent: this integration's time in the batch ran out", 1.0)
                else:
                    self.stopped = _post_range(self.plan, start, end, self.splits)
            except Exception as error:  # noqa: BLE001 - the batch must learn of it, never hang
                log.exception("posting to %s failed", self.plan.endpoint)
                _defer(self.plan, [span], f"{type(error).__name__}: {error}", None)


def _post_range(plan: Plan, start: int, end: int, budget: dict) -> client.Answer | None:
    """Post messages [start, end); returns the answer when it was a retryable failure."""
    items = plan.items[start:end]
    retry_count = max(item.attempts for item in items) - 1
    answer = client.post_batch(
        endpoint=plan.endpoint,
        write_key=plan.write_key,
        messages=plan.encoded[start:end],
        retry_count=max(retry_count, 0),
    )
    _log_request(plan, answer, len(items), max(retry_count, 0))
    if answer.ok:
        for item in items:
            item.status, item.sent_at, item.error, item.response = OutboxStatus.SENT, answer.started_at, "", ""
            plan.outcomes[item.pk] = Outcome(
                "ok", status_code=answer.status_code, response=answer.body[:500], started_at=answer.started_at
            )
        return None
    if answer.retryable:
        for item in items:
            plan.outcomes[item.pk] = _retry_outcome(item, answer)
        return answer
    if answer.status_code in (400, 413) and len(items) > 1 and budget["splits"] >= 2:
        # One bad message must not fail the rest: find it by halves.
        budget["splits"] -= 2
        middle = (start + end) // 2
        first = _post_range(plan, start, middle, budget)
        if first is not None:
            _defer(plan, [(middle, end)], f"not sent: an earlier request failed ({first.describe()})", None)
            return first
        return _post_range(plan, middle, end, budget)
    for item in items:
        fail(item, FailureType.REJECTED, f"rejected by the endpoint: {answer.describe()}", answer.body)
        plan.outcomes[item.pk] = Outcome.failure(
            WorkError(item.error, permanent=True, status_code=answer.status_code, response=answer.body)
        )
    return None


def _retry_outcome(item: OutboxItem, answer: client.Answer) -> Outcome:
    item.response = answer.body or answer.error
    window = timedelta(hours=settings.OUTBOUND_RETRY_WINDOW_HOURS)
    if clock.now() - item.due_at > window:
        hours = settings.OUTBOUND_RETRY_WINDOW_HOURS
        fail(
            item,
            FailureType.DEAD_LETTER,
            f"no success in {hours:g} h of retries; last: {answer.describe()}",
            item.response,
        )
        return Outcome.failure(
            WorkError(item.error, permanent=True, status_code=answer.status_code, response=answer.body)
        )
    return Outcome.failure(
        WorkError(
            answer.describe(),
            retry_after=answer.retry_after,
            status_code=answer.status_code,
            response=answer.body,
            ambiguous=answer.ambiguous,
        )
    )


def _defer(plan: Plan, ranges: list[tuple[int, int]], reason: str, retry_after: float | None) -> None:
    for start, end in ranges:
        for item in plan.items[start:end]:
            if item.pk not in plan.outcomes:
                plan.outcomes[item.pk] = Outcome.failure(WorkError(reason, retry_after=retry_after))


def _log_request(plan: Plan, answer: client.Answer, count: int, retry_count: int) -> None:
    if len(plan.requests) >= REQUEST_LOG_LIMIT:
        return
    plan.requests.append(
        {
            "at": answer.started_at.isoformat(),
            "status": answer.status_code,
            "messages": count,
            "ms": answer.duration_ms,
            "retry_count": retry_count,
            "answer": (answer.body or answer.error)[:300],
        }
    )


# --- the history ------------------------------------------------------------------------------
def runs_record(groups, integrations, outcomes, plans, started_at) -> None:
    """One SyncRun per integration in the batch, with its counts and its requests; each item
    points at it (written with the items' own state when the queue finishes the batch)."""
    requests = {plan.integration.pk: plan.requests for plan in plans}
    now = clock.now()
    worker = f"{socket.gethostname()[:60]}:{os.getpid()}"
    for integration_id, group in groups.items():
        counts = {"sent": 0, "failed": 0, "skipped": 0, "queued": 0}
        for item in group:
            outcome = outcomes.get(item.pk)
            if outcome is None:
                continue
            if outcome.kind == "ok":
                counts["sent"] += 1
            elif outcome.kind == "skipped":
                counts["skipped"] += 1
            elif outcome.permanent:
                counts["failed"] += 1
            else:
                counts["queued"] += 1
        run = SyncRun.objects.create(
            integration_id=integration_id,
            trigger=SyncTrigger.WORKER,
            started_at=started_at,
            finished_at=now,
            requests=requests.get(integration_id, []),
            worker=worker,
            **counts,
        )
        for item in group:
            item.run = run


def kick_for_retries(outcomes: dict[int, Outcome]) -> None:
    """Run the queue again when the soonest retry comes due, instead of at the next minute."""
    if not settings.OUTBOUND_KICK_RETRIES or settings.Q_CLUSTER.get("sync"):
        return
    delays = [
        o.retry_after if o.retry_after is not None else 1.0
        for o in outcomes.values()
        if o.kind == "error" and not o.permanent
    ]
    if not delays:
        return
    delay = min(max(min(delays), 1.0), 120.0)
    timer = threading.Timer(delay + 0.5, _kick)
    timer.daemon = True
    timer.start()


def _kick() -> None:
    from django.db import connection

    from common.workqueue import kick

    try:
        kick(WORK_TYPE)
    finally:
        connection.close()
