"""Drain the inbox: claim due rows in chunks and hand them to their integration's kind.

Claims (integrations/claim.py) let several workers and qclusters drain at once. Every row
ends processed, skipped (with the reason), waiting (until someone it names is identified),
refused (a partner rule; not retried) or failed (an error; retried with backoff). What a
message does is the kind's business (integrations/kinds/): the drain knows nothing of contacts.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from common.bulk import bulk_update
from common.outcomes import Refuse, Skip, Wait
from contacts.selectors import known_ids
from integrations.claim import claimed
from integrations.erasure import redact_again
from integrations.kinds.payload import payload_of
from integrations.lanes import lock_anonymous_ids
from integrations.models import InboxMessage, InboxStatus

log = logging.getLogger(__name__)

# Written with the chunk. `attempts` too: on PostgreSQL the claim counts it in memory only.
STATUS_FIELDS = ["status", "next_attempt_at", "reason", "warnings", "processed_at", "contact", "attempts"]


@dataclass
class DrainResult:
    """Rows by the status they ended in. A row that waited and was applied later in the same
    drain counts once, as applied."""

    processed: int = 0
    skipped: int = 0
    waiting: int = 0
    refused: int = 0
    failed: int = 0
    chunks: int = 0
    # Ids counted as waiting, so a later chunk that applies them moves the count, not adds.
    _waited: set = field(default_factory=set, repr=False)

    @property
    def total(self) -> int:
        return self.processed + self.skipped + self.waiting + self.refused + self.failed

    def add(self, rows: list[InboxMessage]) -> None:
        for row in rows:
            if row.status == InboxStatus.PENDING:
                continue  # woken in its own chunk: counted when applied
            if row.pk in self._waited:
                self._waited.discard(row.pk)
                self.waiting -= 1
            if row.status == InboxStatus.PROCESSED:
                self.processed += 1
            elif row.status == InboxStatus.SKIPPED:
                self.skipped += 1
            elif row.status == InboxStatus.WAITING:
                self.waiting += 1
                self._waited.add(row.pk)
            elif row.status == InboxStatus.REFUSED:
                self.refused += 1
            else:
                self.failed += 1


def backoff(attempts: int) -> timedelta:
    """30 s, 2 min, 8 min, 32 min… capped at 6 hours."""
    return timedelta(seconds=min(30 * 4 ** max(attempts - 1, 0), 6 * 3600))


def finish(row: InboxMessage, status: str, reason: str = "") -> None:
    row.status = status
    row.reason = reason[:2000]
    row.processed_at = timezone.now()
    row.next_attempt_at = None


def fail(row: InboxMessage, error: str, *, permanent: bool) -> None:
    finish(row, InboxStatus.FAILED, error)
    if not permanent and row.attempts < settings.INBOX_MAX_ATTEMPTS:
        row.next_attempt_at = timezone.now() + backoff(row.attempts)


def apply_rows(rows: list[InboxMessage]) -> None:
    """Apply a chunk in memory per integration and flush once; fall back to row by row.

    A database error (a unique race with another worker, a value the database refuses)
    rolls the group back, and each row is then applied alone, so one poison message fails
    by itself and the rest of the chunk still lands.
    """
    by_integration: dict[int, list[InboxMessage]] = defaultdict(list)
    for row in rows:
        by_integration[row.integration_id].append(row)
    for group in by_integration.values():
        integration = group[0].integration
        if not integration.enabled:
            for row in group:
                finish(row, InboxStatus.SKIPPED, "integration is disabled")
            bulk_update(InboxMessage, group, STATUS_FIELDS)
            continue
        try:
            _apply_group_atomic(integration, group)
        except IntegrityError:
            # Usually another worker created the same new contact first. Its row is committed
            # now, so a second pass over the whole group finds it and costs one chunk, not
            # 500 single-row transactions.
            try:
                _apply_group_atomic(integration, group)
            except DatabaseError as error:
                _apply_each(integration, group, error)
        except DatabaseError as error:
            _apply_each(integration, group, error)
        except Exception as error:  # noqa: BLE001 - e.g. a kind no longer installed
            # Not the messages' fault: fail the group with backoff, never the whole drain.
            log.exception("integration %s could not apply its messages", integration.pk)
            for row in group:
                row.contact = None
                row.warnings = []
                fail(row, f"{type(error).__name__}: {error}", permanent=False)
            bulk_update(InboxMessage, group, STATUS_FIELDS)


def _apply_group_atomic(integration, group: list[InboxMessage]) -> None:
    # _apply_group clears each row's contact and warnings first: a retried group starts clean.
    with transaction.atomic():
        _apply_group(integration, group)


def _apply_each(integration, group: list[InboxMessage], error: Exception) -> None:
    log.warning("chunk flush failed (%s); applying %d rows one by one", error, len(group))
    for row in group:
        _apply_alone(integration, row)


def _apply_alone(integration, row: InboxMessage) -> None:
    try:
        with transaction.atomic():
            _apply_group(integration, [row])
    except DatabaseError as error:
        row.contact = None
        fail(row, f"database error: {error}", permanent=False)
        row.save(update_fields=STATUS_FIELDS)


def _apply_group(integration, rows: list[InboxMessage]) -> None:
    behaviour = integration.behaviour()
    batch = behaviour.open_batch(rows)
    for row in rows:
        row.warnings = []
        row.contact = None
        try:
            # In memory, no savepoint: a database error aborts the whole group instead,
            # and apply_rows retries it row by row.
            behaviour.apply(batch, row)
        except Wait as wait:
            finish(row, InboxStatus.WAITING, str(wait))
        except Skip as skip:
            finish(row, InboxStatus.SKIPPED, str(skip))
        except Refuse as refuse:
            finish(row, InboxStatus.REFUSED, str(refuse))
        except DatabaseError:
            raise
        except Exception as error:  # noqa: BLE001 - a bug in one message must not stop the chunk
            log.exception("applying inbox message %s failed", row.pk)
            fail(row, f"{type(error).__name__}: {error}", permanent=False)
        else:
            finish(row, InboxStatus.PROCESSED)
    behaviour.close_batch(batch, rows)
    key_waiting_aliases(rows)
    settle_waiting(rows, batch.newly_known_ids)
    bulk_update(InboxMessage, rows, STATUS_FIELDS)
    if batch.erased:
        redact_again(rows)


def wait_keys(row: InboxMessage) -> set[str]:
    """The ids a waiting row waits for: its anonymousId, and for an alias its userId too."""
    keys = {row.anonymous_id}
    if row.type == "alias":
        keys.add(row.user_id)
    return keys - {""}


def key_waiting_aliases(rows: list[InboxMessage]) -> None:
    """An alias that waits is found again by its userId or its previousId: the previousId goes
    in the anonymousId column (indexed for waiting rows) when the message sent none."""
    for row in rows:
        if row.status == InboxStatus.WAITING and row.type == "alias" and not row.anonymous_id:
            previous = str(payload_of(row).get("previousId") or "")[:255]
            if previous:
                row.anonymous_id = previous
                InboxMessage.objects.filter(pk=row.pk).update(anonymous_id=previous)


def settle_waiting(rows: list[InboxMessage], known: set[str]) -> None:
    """Wake the rows waiting for ids this chunk made known, and leave none waiting for an id
    another worker made known meanwhile.

    A visitor's page (in its anonymousId's lane) and the identify naming it (in the userId's
    lane) can be applied by two workers at once: the identify's wake-up ran before the page
    was stored as waiting, and nothing woke it again. Both sides now take a transaction lock
    per id before that step, so one of them sees the other's commit.
    """
    waiting = set().union(*(wait_keys(row) for row in rows if row.status == InboxStatus.WAITING))
    if not (waiting or known):
        return
    lock_anonymous_ids(waiting | known)
    if waiting - known:
        # Read after the lock: an identify committed by another worker is visible now.
        known = known | known_ids(waiting - known)
    if known:
        wake_waiting(rows, known)


def wake_waiting(rows: list[InboxMessage], ids: set[str]) -> None:
    """Rows waiting for one of `ids` come due again, in this chunk's rows as in those stored by
    earlier chunks. Their lanes may differ from this one, so they are applied by whichever
    worker holds theirs."""
    now = timezone.now()
    for row in rows:
        if row.status == InboxStatus.WAITING and wait_keys(row) & ids:
            row.status, row.reason, row.next_attempt_at, row.processed_at = InboxStatus.PENDING, "", now, None
    woken = dict(status=InboxStatus.PENDING, reason="", next_attempt_at=now, processed_at=None)
    InboxMessage.objects.filter(
        Q(anonymous_id__in=ids) | Q(user_id__in=ids, type="alias"), status=InboxStatus.WAITING
    ).update(**woken)


def drain_inbox(*, max_seconds: float = 50, chunk: int | None = None, max_rows: int | None = None) -> DrainResult:
    """Drain due rows until none are left, the time budget is spent, or max_rows are done."""
    chunk = chunk or settings.INBOX_DRAIN_CHUNK
    result = DrainResult()
    started = time.monotonic()
    while time.monotonic() - started < max_seconds:
        limit = chunk if max_rows is None else min(chunk, max_rows - result.total)
        if limit <= 0:
            break
        with claimed(limit) as rows:
            if not rows:
                break
            apply_rows(rows)
        # Rows not saved by a failed group (database down) are still due: they come back.
        result.add(rows)
        result.chunks += 1
    return result
