"""One work queue for everything that happens later.

Email sends, loop steps, survey dispatches and reminders, webhook and notification deliveries
and outbound Segment messages are all rows due at a time, claimed by one worker, retried with
backoff and never done twice. Each is a model of its own app inheriting `WorkItem`, registered
as a `WorkType` with its handler:

    register(WorkType("email_send", EmailSend, batch_handler=send_emails, label="email sends",
                      update_fields=("status", "sent_at"), max_attempts=5))

and its rows are created with `next_attempt_at` set (their due time), then
`kick_on_commit("email_send")` so they run within a second rather than the next minute.

How it works (each module says why in more detail):
- claim.py: one UPDATE … RETURNING takes a batch of due rows with FOR UPDATE SKIP LOCKED and a
  short lease (30 s), renewed by a heartbeat while the batch runs; a killed worker's rows are due
  again within the lease.
- run.py: handle a batch, then write the items' next state and the attempt log in bulk:
  done, skipped, retried after backoff (or the partner's Retry-After), or failed for good.
- backoff.py: exponential with jitter, or a fixed schedule (Standard Webhooks').
- kicks.py, common/tasks.py, common/schedules.py: the django-q2 side; `manage.py process_due`
  runs the same `run_due` in the foreground. Both claim, so they never do one item twice.
- admin.py: the attempt inline, retry/cancel actions and a status column for queue admins.

Other apps may also register a "runner" (the inbox drain does): a callable that drains work of
its own shape and returns counts, run by run_due beside the queues.
"""

from __future__ import annotations

from common.workqueue.backoff import STANDARD_WEBHOOKS, Backoff
from common.workqueue.errors import Outcome, WorkError
from common.workqueue.kicks import kick, kick_on_commit
from common.workqueue.registry import WorkType, register, register_runner, unregister
from common.workqueue.run import run_due

__all__ = [
    "STANDARD_WEBHOOKS",
    "Backoff",
    "Outcome",
    "WorkError",
    "WorkType",
    "kick",
    "kick_on_commit",
    "register",
    "register_runner",
    "run_due",
    "unregister",
]
