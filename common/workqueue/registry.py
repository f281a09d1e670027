"""The kinds of due work: queue types (a WorkItem model and its handler) and plain runners.

A work type names one concrete WorkItem model, how to handle its rows and its policy (batch
size, lease, attempts, backoff). Handlers come in two shapes:

- `handler(item) -> Outcome | None`, one item at a time (None means it worked); the default
  `handle_batch` calls it per item, times it, and turns a WorkError into its Outcome, so a bug
  in one item never stops the batch;
- `batch_handler(items) -> {pk: Outcome}`, for work that is cheaper together: SMTP sends a
  batch over one connection, the outbound Segment client posts 500 messages per call. An item
  it leaves out of its answer is retried. A WorkError it raises applies to the whole batch.

A runner is a callable of another app that drains work of its own shape (the inbox, with its
lanes), `runner(max_seconds=...) -> {count name: n}`, run beside the queues by run_due.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from django.conf import settings

from common import clock
from common.workqueue.backoff import Backoff
from common.workqueue.errors import Outcome, WorkError
from common.workqueue.models import WorkItem

log = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS = 30.0


def default_lease() -> float:
    return float(getattr(settings, "WORKQUEUE_LEASE_SECONDS", DEFAULT_LEASE_SECONDS))


@dataclass(eq=False)
class WorkType:
    name: str
    model: type[WorkItem]
    handler: Callable[[WorkItem], Outcome | None] | None = None
    batch_handler: Callable[[list[WorkItem]], Mapping[int, Outcome]] | None = None
    label: str = ""
    batch_size: int = 100
    # Seconds a claim holds its rows before another worker may take them. Renewed every third
    # of it while the batch runs, so it only runs out when the worker is gone or stuck.
    lease: float | None = None
    # Seconds a batch may hold its rows at most: past this its heartbeats stop, and a stuck
    # handler's rows come back one lease later (the cluster's task timeout is 120 s).
    timeout: float = 90.0
    max_attempts: int = 8
    backoff: Backoff = field(default_factory=Backoff)
    # A Retry-After longer than this is cut to it: a partner cannot park an item for a week.
    max_retry_after: float = 3600.0
    # Domain fields handlers and hooks set on items, written with the queue's own fields.
    update_fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        overridden = type(self).handle is not WorkType.handle or type(self).handle_batch is not WorkType.handle_batch
        if not overridden and (self.handler is None) == (self.batch_handler is None):
            raise ValueError(f"work type {self.name!r}: give exactly one of handler and batch_handler")
        if not (isinstance(self.model, type) and issubclass(self.model, WorkItem)) or self.model._meta.abstract:
            raise ValueError(f"work type {self.name!r}: model must be a concrete WorkItem subclass")
        if self.batch_size < 1 or self.max_attempts < 1:
            raise ValueError(f"work type {self.name!r}: batch_size and max_attempts must be at least 1")
        for name in self.update_fields:
            self.model._meta.get_field(name)  # a typo fails at start-up, not at the first finish
        self.label = self.label or self.name

    @property
    def lease_seconds(self) -> float:
        return float(self.lease) if self.lease is not None else default_lease()

    def handle(self, item: WorkItem) -> Outcome | None:
        if self.handler is None:
            raise NotImplementedError(f"work type {self.name!r} has no per-item handler")
        return self.handler(item)

    def handle_batch(self, items: list[WorkItem]) -> Mapping[int, Outcome]:
        if self.batch_handler is not None:
            return self.batch_handler(items)
        outcomes: dict[int, Outcome] = {}
        for item in items:
            started_at, started = clock.now(), time.monotonic()
            try:
                outcome = self.handle(item) or Outcome.ok()
            except WorkError as error:
                outcome = Outcome.failure(error)
            except Exception as error:  # noqa: BLE001 - a bug in one item must not stop the batch
                log.exception("%s %s failed", self.name, item.pk)
                outcome = Outcome.failure(f"{type(error).__name__}: {error}")
            if outcome.duration_ms is None or outcome.started_at is None:
                outcome = replace(
                    outcome,
                    started_at=outcome.started_at or started_at,
                    duration_ms=round((time.monotonic() - started) * 1000)
                    if outcome.duration_ms is None
                    else outcome.duration_ms,
                )
            outcomes[item.pk] = outcome
        return outcomes


@dataclass(eq=False)
class Runner:
    name: str
    func: Callable[..., Mapping[str, int]]
    label: str = ""

    def __post_init__(self) -> None:
        self.label = self.label or self.name


_types: dict[str, WorkType] = {}
_runners: dict[str, Runner] = {}


def register(work_type: WorkType, *, replace: bool = False) -> WorkType:
    """Add a work type. One type per model: two would claim each other's rows."""
    name = work_type.name
    if name in _runners or (name in _types and not replace and _types[name].model is not work_type.model):
        raise ValueError(f"a kind of work named {name!r} is already registered")
    for other in _types.values():
        if other.model is work_type.model and other.name != name:
            raise ValueError(f"{work_type.model.__name__} is already the queue of work type {other.name!r}")
    _types[name] = work_type
    return work_type


def register_runner(name: str, func: Callable[..., Mapping[str, int]], *, label: str = "") -> Runner:
    """Add (or replace) a runner: `func(max_seconds=...)` returns its counts."""
    if name in _types:
        raise ValueError(f"a kind of work named {name!r} is already registered")
    runner = _runners[name] = Runner(name, func, label)
    return runner


def unregister(name: str) -> None:
    _types.pop(name, None)
    _runners.pop(name, None)


def names() -> list[str]:
    """Every kind of work: runners first (the inbox feeds the queues), then the queues."""
    return [*_runners, *_types]


def get_type(name: str) -> WorkType | None:
    return _types.get(name)


def get_runner(name: str) -> Runner | None:
    return _runners.get(name)


def work_types() -> list[WorkType]:
    return list(_types.values())


def type_for_model(model: type) -> WorkType | None:
    for work_type in _types.values():
        if work_type.model is model or issubclass(model, work_type.model):
            return work_type
    return None


def label_of(name: str) -> str:
    kind = _types.get(name) or _runners.get(name)
    return kind.label if kind else name
