"""The queue's two hot statements on PostgreSQL, each one round trip.

claim_rows: the planner settings and the claim in one execute, rows built by common.bulk.instances.

write_held: the items' next state in one UPDATE … FROM a JSON rows parameter, as common.bulk does,
fenced on the claim (worker and claim time) and returning the ids it wrote, so a row another
worker took after this claim's lease ran out is left as that worker wrote it. It finds the rows
by primary key whatever the statistics say (see write_held).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import connection, transaction

from common.bulk import instances, object_rows, rows_source, server_cursor
from common.workqueue.models import WorkItem

_CLAIM = """
SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true);
WITH due AS (
    SELECT {pk} AS due_id, {claimed_by} AS lapsed_by, {claimed_at} AS lapsed_at
    FROM {table}
    WHERE {next} IS NOT NULL AND {next} <= %s
    ORDER BY {next}, {pk}
    LIMIT %s
    FOR UPDATE SKIP LOCKED
)
UPDATE {table} AS t
SET {next} = %s, {attempts} = t.{attempts} + 1, {claimed_by} = %s, {claimed_at} = %s
FROM due
WHERE t.{pk} = due.due_id
RETURNING {columns}, due.lapsed_by, due.lapsed_at
"""


def _column(model, name: str) -> str:
    return connection.ops.quote_name(model._meta.get_field(name).column)


def claim_rows(
    model: type[WorkItem], *, limit: int, due_by: datetime, lease_until: datetime, now: datetime, worker: str
) -> tuple[list[WorkItem], dict[int, tuple[str, datetime | None]]]:
    """Claimed rows, and for rows whose previous claim never finished: (its worker, its time)."""
    meta = model._meta
    quote = connection.ops.quote_name
    fields = meta.concrete_fields
    # Only the model's own quoted table and column names are interpolated.
    sql = _CLAIM.format(
        table=quote(meta.db_table),
        pk=quote(meta.pk.column),
        next=_column(model, "next_attempt_at"),
        attempts=_column(model, "attempts"),
        claimed_by=_column(model, "claimed_by"),
        claimed_at=_column(model, "claimed_at"),
        columns=", ".join(f"t.{quote(f.column)}" for f in fields),
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # The planner settings first: walk the due index in order and stop at `limit`,
        # whatever the statistics say (after a burst the planner sorted every due row).
        cursor.execute(sql, [due_by, limit, lease_until, worker, now])
        cursor.nextset()
        rows = cursor.fetchall()
    items = instances(model, rows, connection)
    lapsed = {item.pk: (row[-2], row[-1]) for item, row in zip(items, rows, strict=True) if row[-2]}
    return items, lapsed


def write_held(
    model: type[WorkItem], items: Sequence[WorkItem], fields: Sequence[str], *, worker: str, claimed_at: datetime
) -> set[int]:
    """Write `fields` of the items this claim still holds; the ids written."""
    if not items:
        return set()
    meta = model._meta
    pk = meta.pk
    quote = connection.ops.quote_name
    targets = [meta.get_field(name) for name in fields]
    assignments = ", ".join(f"{quote(f.column)} = v.c{i}" for i, f in enumerate(targets, start=1))
    # Only quoted model table and column names are interpolated; values are parameters.
    sql = (
        f"UPDATE {quote(meta.db_table)} AS t SET {assignments} "  # noqa: S608
        f"FROM {rows_source([pk, *targets], connection)} AS v "
        f"WHERE t.{quote(pk.column)} = v.c0 AND t.{quote(pk.column)} = ANY(%s) "
        f"AND t.{_column(model, 'claimed_by')} = %s "
        f"AND t.{_column(model, 'claimed_at')} = %s "
        f"RETURNING t.{quote(pk.column)}"
    )
    params = [object_rows(items, [pk, *targets], connection), [item.pk for item in items], worker, claimed_at]
    with transaction.atomic(), server_cursor(connection) as cursor:
        # Just after a claim the statistics say almost no row has this worker's claimed_by: the
        # planner then read the table first and joined the arrays in a nested loop, 500 × 500
        # comparisons for a batch of 500. The rows are found by primary key and hash-joined.
        cursor.execute("SELECT set_config('enable_nestloop', 'off', true)")
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}
