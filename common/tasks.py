"""django-q2 entry point for due work. Safe to run twice, and beside `process_due`: every
item is claimed by one run only."""

from __future__ import annotations

from common.workqueue.run import run_due as _run_due

# Below the cluster's 120 s task timeout, with room for the batch in flight to finish.
MAX_SECONDS = 50.0


def run_due(types: list[str] | None = None, max_seconds: float = MAX_SECONDS) -> dict:
    return _run_due(types=types, max_seconds=max_seconds)
