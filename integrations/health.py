"""/healthz: what a load balancer or a monitor polls.

200 {"db": "ok", "queue": "ok"} when healthy; 503 with the failing part explained otherwise. The
queue is unhealthy when its broker cannot be reached, or when it is stalled: a due inbox message
has waited longer than HEALTH_QUEUE_STALL_SECONDS and no drain has finished in as long (no
worker is running, or every drain fails).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.utils import timezone

from integrations.lanes import LANES
from integrations.models import InboxMessage

DRAIN_TASK = "integrations.tasks.drain_inbox"


def healthz(request):
    status = {"db": "ok", "queue": "ok"}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:  # noqa: BLE001
        status["db"] = f"error: {type(error).__name__}"
    try:
        broker = settings.Q_CLUSTER
        if "redis" in broker:
            import redis

            redis.Redis.from_url(broker["redis"], socket_timeout=2).ping()
        elif status["db"] != "ok":
            status["queue"] = "error: the ORM broker needs the database"
    except Exception as error:  # noqa: BLE001
        status["queue"] = f"error: {type(error).__name__}"
    if status["db"] == "ok" and status["queue"] == "ok":
        try:
            status["queue"] = queue_stall() or "ok"
        except DatabaseError as error:
            status["queue"] = f"error: {type(error).__name__}"
    healthy = all(v == "ok" for v in status.values())
    return JsonResponse(status, status=200 if healthy else 503)


def queue_stall(now: datetime | None = None) -> str | None:
    """Why the inbox is not being drained, or None while it is (or has nothing due for long)."""
    limit = settings.HEALTH_QUEUE_STALL_SECONDS
    if limit <= 0:
        return None
    now = now or timezone.now()
    due_since = oldest_due(now)
    if due_since is None or now - due_since <= timedelta(seconds=limit):
        return None
    finished, failed = last_drains()
    if finished is not None and now - finished <= timedelta(seconds=limit):
        return None  # drains run: a backlog being worked through, not a stall
    reason = f"stalled: oldest pending message is {duration(now - due_since)} old and no drain has finished "
    reason += f"since {stamp(finished)}" if finished else "yet"
    if failed is not None:
        reason += f"; the last drain failed at {stamp(failed[0])}: {failed[1]}"
    return reason


def oldest_due(now: datetime) -> datetime | None:
    """When the longest-waiting message at the head of a lane came due; None when none is due.

    The head of each lane is its lowest-id due row, the one its next drain applies first: one
    short walk down the inbox_due_lane index per lane, as claims take them, so the cost grows
    with neither the inbox nor the backlog. A row that comes due again later (a retry, a woken
    visitor) may sit behind the head for a while; a stalled lane's head ages all the same.
    """
    heads = []
    for lane in range(LANES):
        head = (
            InboxMessage.objects.filter(lane=lane, next_attempt_at__isnull=False, next_attempt_at__lte=now)
            .order_by("id")
            .values_list("next_attempt_at", flat=True)
            .first()
        )
        if head is not None:
            heads.append(head)
    return min(heads, default=None)


def last_drains() -> tuple[datetime | None, tuple[datetime, str] | None]:
    """When a drain last finished, and the last failure if one came after it.

    django-q2 records every task it ran, in the database whichever the broker, so this sees the
    drains of every worker and cluster; the drain itself records nothing. The table is small: it
    keeps the last Q_CLUSTER["save_limit"] successes, and failures.
    """
    from django_q.models import Failure, Success

    finished = Success.objects.filter(func=DRAIN_TASK).order_by("-stopped").values_list("stopped", flat=True).first()
    failures = Failure.objects.filter(func=DRAIN_TASK)
    if finished is not None:
        failures = failures.filter(stopped__gt=finished)
    failure = failures.order_by("-stopped").values_list("stopped", "result").first()
    if failure is None:
        return finished, None
    error = str(failure[1] or "").strip().splitlines()[0:1]
    return finished, (failure[0], (error[0] if error else "unknown error")[:200])


def duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
