"""Staff's writes on queued items: run again now, cancel. The admin actions call these.

A running item (held by a worker whose lease has not run out) is left alone by both: retrying
it would run it twice, and cancelling it would hide a send that is happening.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from common import clock
from common.bulk import bulk_update
from common.workqueue import registry
from common.workqueue.models import WorkItem

CANCELLED = "cancelled by staff"


@dataclass
class Changed:
    changed: int = 0
    running: int = 0
    unchanged: int = 0


def _update(model: type[WorkItem], pks: Iterable[int], apply: Callable[[WorkItem, datetime], bool]) -> Changed:
    work_type = registry.type_for_model(model)
    extra = list(work_type.update_fields) if work_type else []
    now = clock.now()
    result = Changed()
    with transaction.atomic():
        changed = []
        for item in model.objects.select_for_update().filter(pk__in=list(pks)).order_by("pk"):
            if item.claimed_by and item.next_attempt_at and item.next_attempt_at > now:
                result.running += 1
            elif apply(item, now):
                changed.append(item)
            else:
                result.unchanged += 1
        bulk_update(model, changed, ["next_attempt_at", "finished_at", "claimed_by", "last_error", *extra])
    result.changed = len(changed)
    return result


def items_retry_now(*, model: type[WorkItem], pks: Iterable[int]) -> Changed:
    """Due now, finished or not. A failed item gets one more attempt (its count goes on)."""

    def apply(item: WorkItem, now: datetime) -> bool:
        item.next_attempt_at, item.finished_at, item.claimed_by = now, None, ""
        item.work_retried()
        return True

    return _update(model, pks, apply)


def items_cancel(*, model: type[WorkItem], pks: Iterable[int]) -> Changed:
    """No next attempt; the item keeps its attempts and says why. Finished items stay as they are."""

    def apply(item: WorkItem, now: datetime) -> bool:
        if item.next_attempt_at is None:
            return False
        item.next_attempt_at, item.claimed_by, item.last_error = None, "", CANCELLED
        item.work_cancelled()
        return True

    return _update(model, pks, apply)
