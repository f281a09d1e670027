"""Durable first: put accepted messages in the inbox in one statement per 1,000 rows.

`INSERT … ON CONFLICT DO NOTHING RETURNING` tells us, in the same round trip, which messages
were new and which were duplicates by (integration, messageId). PostgreSQL and SQLite (3.35+)
both speak it, so there is one code path.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from datetime import datetime

import orjson
from django.db import connection, transaction
from django.utils import timezone

from common.bulk import server_cursor
from integrations.lanes import lane_of
from integrations.models import DailyUsage, InboxMessage, Integration, RejectedMessage

INSERT_CHUNK = 1000
INBOX_COLUMNS = (
    "integration_id",
    "message_id",
    "type",
    "user_id",
    "anonymous_id",
    "email",
    "event",
    "payload",
    "timestamp",
    "received_at",
    "status",
    "next_attempt_at",
    "attempts",
    "reason",
    "warnings",
    "lane",
)


def _dt(value: datetime):
    return connection.ops.adapt_datetimefield_value(value)


def inbox_insert(*, integration: Integration, rows: list[dict], received_at: datetime) -> set[str]:
    """Insert rows; return the message ids that were new."""
    if not rows:
        return set()
    if connection.vendor == "postgresql":
        return _inbox_insert_unnest(integration=integration, rows=rows, received_at=received_at)
    table = connection.ops.quote_name(InboxMessage._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in INBOX_COLUMNS)
    row_placeholder = "(" + ", ".join(["%s"] * len(INBOX_COLUMNS)) + ")"
    received = _dt(received_at)
    inserted: set[str] = set()
    with connection.cursor() as cursor:
        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = rows[start : start + INSERT_CHUNK]
            params: list = []
            for row in chunk:
                params.extend(
                    (
                        integration.pk,
                        row["message_id"],
                        row["type"],
                        row["user_id"],
                        row["anonymous_id"],
                        row["email"],
                        row["event"],
                        _json(row["payload"]),
                        _dt(row["timestamp"]),
                        received,
                        "pending",
                        received,
                        0,
                        "",
                        "[]",
                        lane_of(row["user_id"], row["anonymous_id"]),
                    )
                )
            # Only quoted model table and column names and %s placeholders are interpolated.
            sql = (
                f"INSERT INTO {table} ({columns}) VALUES "  # noqa: S608
                + ", ".join([row_placeholder] * len(chunk))
                + " ON CONFLICT (integration_id, message_id) DO NOTHING RETURNING message_id"
            )
            cursor.execute(sql, params)
            inserted.update(r[0] for r in cursor.fetchall())
    return inserted


def _json(value) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# PostgreSQL: one array parameter per varying column and unnest(), instead of 15 placeholders
# a row. The statement stays short whatever the batch size, and psycopg has far less to quote.
# Shared by the plain insert (imports) and the one-statement store of the inbound endpoints.
_INBOX_INSERT = """
INSERT INTO integrations_inboxmessage (
    integration_id, received_at, status, next_attempt_at, attempts, reason, warnings,
    message_id, type, user_id, anonymous_id, email, event, payload, timestamp, lane
)
SELECT %(integration)s, %(received)s, 'pending', %(received)s, 0, '', '[]'::jsonb,
       v.message_id, v.type, v.user_id, v.anonymous_id, v.email, v.event, v.payload, v.ts, v.lane
FROM unnest(
    %(message_id)b::text[], %(type)b::text[], %(user_id)b::text[], %(anonymous_id)b::text[],
    %(email)b::text[], %(event)b::text[], %(payload)b::jsonb[], %(ts)b::timestamptz[], %(lane)b::int2[]
) AS v(message_id, type, user_id, anonymous_id, email, event, payload, ts, lane)
{condition}
ON CONFLICT (integration_id, message_id) DO NOTHING
RETURNING message_id
"""
_UNNEST_SQL = _INBOX_INSERT.format(condition="")


def _inbox_insert_unnest(*, integration: Integration, rows: list[dict], received_at: datetime) -> set[str]:
    assert InboxMessage._meta.db_table == "integrations_inboxmessage"
    inserted: set[str] = set()
    with server_cursor(connection) as cursor:
        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = rows[start : start + INSERT_CHUNK]
            cursor.execute(_UNNEST_SQL, {"integration": integration.pk, "received": received_at, **_columns(chunk)})
            inserted.update(r[0] for r in cursor.fetchall())
    return inserted


def usage_bump(*, integration: Integration, requests: int = 1, messages: int = 0, rejected: int = 0) -> int:
    """Count a request against today's usage and return today's request total."""
    table = connection.ops.quote_name(DailyUsage._meta.db_table)
    day = timezone.now().date()
    # Only the quoted model table name is interpolated; values are parameters.
    sql = (
        f"INSERT INTO {table} (integration_id, day, requests, messages, rejected) "  # noqa: S608
        "VALUES (%s, %s, %s, %s, %s) "
        "ON CONFLICT (integration_id, day) DO UPDATE SET "
        "requests = {t}.requests + EXCLUDED.requests, "
        "messages = {t}.messages + EXCLUDED.messages, "
        "rejected = {t}.rejected + EXCLUDED.rejected "
        "RETURNING requests"
    ).replace("{t}", table)
    with connection.cursor() as cursor:
        cursor.execute(sql, [integration.pk, connection.ops.adapt_datefield_value(day), requests, messages, rejected])
        return cursor.fetchone()[0]


def request_store(
    *, integration: Integration, rows: list[dict], received_at: datetime, rejected: int = 0
) -> set[str] | None:
    """Count one inbound request against today's usage and, within the cap, store its rows.

    Returns the message ids that were new, or None when the daily cap is spent (nothing
    stored). A request over the cap counts as a request and one rejection, never as messages,
    and the count stays even when the caller rolls back: it is not an error.
    """
    if connection.vendor == "postgresql":
        return _request_store_one_statement(
            integration=integration, rows=rows, received_at=received_at, rejected=rejected
        )
    with transaction.atomic():
        used = usage_bump(integration=integration, requests=1)
        spent = integration.daily_cap is not None and used > integration.daily_cap
        if spent:
            usage_bump(integration=integration, requests=0, rejected=1)
        else:
            usage_bump(integration=integration, requests=0, messages=len(rows), rejected=rejected)
            inserted = inbox_insert(integration=integration, rows=rows, received_at=received_at)
    return None if spent else inserted


# PostgreSQL: the usage count, the cap check and the inbox insert in one statement, so a single
# call costs one round trip and one commit instead of five. The usage row is locked only from
# this statement until its commit.
_STORE_SQL = """
WITH usage AS (
    INSERT INTO integrations_dailyusage AS u (integration_id, day, requests, messages, rejected)
    VALUES (
        %(integration)s, %(day)s, 1,
        CASE WHEN %(cap)s::bigint IS NULL OR %(cap)s::bigint >= 1 THEN %(messages)s::int ELSE 0 END,
        CASE WHEN %(cap)s::bigint IS NULL OR %(cap)s::bigint >= 1 THEN %(rejected)s::int ELSE 1 END
    )
    ON CONFLICT (integration_id, day) DO UPDATE SET
        requests = u.requests + 1,
        messages = u.messages
            + CASE WHEN %(cap)s::bigint IS NULL OR u.requests + 1 <= %(cap)s::bigint THEN %(messages)s::int ELSE 0 END,
        rejected = u.rejected
            + CASE WHEN %(cap)s::bigint IS NULL OR u.requests + 1 <= %(cap)s::bigint THEN %(rejected)s::int ELSE 1 END
    RETURNING requests
), stored AS ({insert})
SELECT (SELECT requests FROM usage), ARRAY(SELECT message_id FROM stored)
""".format(  # noqa: S608 - fixed SQL text only; every value is a bound parameter
    insert=_INBOX_INSERT.format(
        condition="WHERE %(cap)s::bigint IS NULL OR (SELECT requests FROM usage) <= %(cap)s::bigint"
    )
)


def _request_store_one_statement(
    *, integration: Integration, rows: list[dict], received_at: datetime, rejected: int
) -> set[str] | None:
    assert InboxMessage._meta.db_table == "integrations_inboxmessage"
    assert DailyUsage._meta.db_table == "integrations_dailyusage"
    cap = integration.daily_cap
    params = {
        "integration": integration.pk,
        "day": received_at.date(),
        "cap": cap,
        "messages": len(rows),
        "rejected": rejected,
        "received": received_at,
        **_columns(rows),
    }
    # Alone it commits by itself. Inside a caller's transaction it gets a savepoint, so a
    # failure leaves that transaction usable, as a failed atomic() block would.
    with transaction.atomic() if connection.in_atomic_block else nullcontext(), server_cursor(connection) as cursor:
        cursor.execute(_STORE_SQL, params)
        used, inserted = cursor.fetchone()
    return None if cap is not None and used > cap else set(inserted)


def _columns(rows: list[dict]) -> dict[str, list]:
    """The varying inbox columns as one list each, for unnest()."""
    return {
        "message_id": [r["message_id"] for r in rows],
        "type": [r["type"] for r in rows],
        "user_id": [r["user_id"] for r in rows],
        "anonymous_id": [r["anonymous_id"] for r in rows],
        "email": [r["email"] for r in rows],
        "event": [r["event"] for r in rows],
        "payload": [_json(r["payload"]) for r in rows],
        "ts": [r["timestamp"] for r in rows],
        "lane": [lane_of(r["user_id"], r["anonymous_id"]) for r in rows],
    }


def _text(value: str) -> str:
    """PostgreSQL text cannot hold NUL: without this, a refused body containing \\u0000 (or a
    raw NUL byte) failed to insert and the rejection was lost instead of shown to staff."""
    return value.replace("\x00", "\ufffd")


def rejection_rows(
    *, integration: Integration | None, path: str, status: int, problems: list[dict], remote_addr: str | None
) -> list[RejectedMessage]:
    now = timezone.now()
    return [
        RejectedMessage(
            integration=integration,
            received_at=now,
            path=_text(path)[:64],
            # A batch item carries its own status (413 for an item over 32 KB, else 400).
            status_code=p.get("status", status),
            code=p["code"],
            message=_text(p["message"]),
            index=p.get("index"),
            body=_text(p.get("body", "")[:65536]),
            remote_addr=remote_addr,
        )
        for p in problems
    ]


def record_rejection(*, keep_row: bool = True, count_usage: bool = True, **kwargs) -> None:
    """Keep a refused request for staff, best effort: failing to record never turns a 4xx into a 5xx."""
    try:
        with transaction.atomic():
            if keep_row:
                RejectedMessage.objects.bulk_create(rejection_rows(**kwargs))
            if count_usage and kwargs.get("integration") is not None:
                usage_bump(integration=kwargs["integration"], requests=1, rejected=len(kwargs["problems"]))
    except Exception:  # noqa: BLE001 - the answer to the caller must stay the 4xx
        import logging

        logging.getLogger(__name__).exception("could not record a rejected request")


_last_drain_queued = 0.0


def drain_soon() -> None:
    """Queue an inbox drain after commit, at most twice a second per process.

    The scheduled drain is the safety net, so a failure to queue here loses nothing.
    """
    global _last_drain_queued
    now = time.monotonic()
    if now - _last_drain_queued < 0.5:
        return
    _last_drain_queued = now
    try:
        from django_q.tasks import async_task

        async_task("integrations.tasks.drain_inbox", task_name="drain inbox", group="inbox")
    except Exception:  # noqa: BLE001
        import logging

        logging.getLogger(__name__).warning("could not queue the inbox drain; the schedule will run it")
