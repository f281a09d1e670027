"""The contacts' history (ContactChange rows) and timeline (ContactEvent rows), written in bulk.

The drain records tens of thousands of changes and events a minute, so rows go in as plain
tuples and one INSERT … SELECT from one JSON rows parameter on PostgreSQL
(common.bulk.rows_source), with no model instance per row (building those cost more than the
insert). Other databases use bulk_create.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connections, router

from common.bulk import json_rows, rows_source, server_cursor
from contacts.models import ContactChange, ContactEvent

# (contact id, inbox message id or None, kind, name, old, new, at, actor)
Change = tuple[int, int | None, str, str, Any, Any, datetime, str]
_COLUMNS = ("contact", "inbox_message_id", "kind", "name", "old", "new", "at", "actor")
# (contact id, integration id or None, inbox message id or None, type, name, properties, timestamp)
Event = tuple[int, int | None, int | None, str, str, dict, datetime]
_EVENT_COLUMNS = ("contact", "integration", "inbox_message_id", "type", "name", "properties", "timestamp")


def changes_insert(rows: Sequence[Change]) -> None:
    if not rows:
        return
    connection = connections[router.db_for_write(ContactChange)]
    if connection.vendor != "postgresql":
        ContactChange.objects.bulk_create(
            [
                ContactChange(
                    contact_id=contact,
                    inbox_message_id=source,
                    kind=kind,
                    name=name[:255],
                    old=old,
                    new=new,
                    at=at,
                    actor=actor[:100],
                )
                for contact, source, kind, name, old, new, at, actor in rows
            ],
            batch_size=500,
        )
        return
    fields = [ContactChange._meta.get_field(name) for name in _COLUMNS]
    quote = connection.ops.quote_name
    # Only the model's quoted table and column names are interpolated; rows are one parameter.
    sql = (
        f"INSERT INTO {quote(ContactChange._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
        f"SELECT * FROM {rows_source(fields, connection)} AS v"
    )
    rows = [
        (contact, source, kind, name[:255], old, new, at, actor[:100])
        for contact, source, kind, name, old, new, at, actor in rows
    ]
    with server_cursor(connection) as cursor:
        cursor.execute(sql, [json_rows(rows)])


def events_insert(rows: Sequence[Event]) -> list[tuple[int, int] | None]:
    """Insert timeline events; for each row, (event id, contact id), or None if it is not stored.

    A row whose inbox message already has its event (a re-run chunk) is not inserted again: it
    gets the stored event's ids, so whoever announces the events announces the same ids.
    """
    if not rows:
        return []
    connection = connections[router.db_for_write(ContactEvent)]
    fields = [ContactEvent._meta.get_field(name) for name in _EVENT_COLUMNS]
    if connection.vendor != "postgresql":
        attnames = [f.attname for f in fields]
        ContactEvent.objects.bulk_create(
            [ContactEvent(**dict(zip(attnames, row, strict=True))) for row in rows],
            ignore_conflicts=True,
            batch_size=500,
        )
        return _ids_by_inbox_message(rows, {})
    quote = connection.ops.quote_name
    # Only the model's quoted table and column names are interpolated; rows are one parameter.
    sql = (
        f"INSERT INTO {quote(ContactEvent._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
        f"SELECT * FROM {rows_source(fields, connection)} AS v ON CONFLICT DO NOTHING "
        "RETURNING inbox_message_id, id, contact_id"
    )
    with server_cursor(connection) as cursor:
        cursor.execute(sql, [json_rows(rows)])
        inserted = cursor.fetchall()
    # Events with no inbox message never conflict: each was inserted, and comes back in order.
    unsourced = iter([(pk, contact) for source, pk, contact in inserted if source is None])
    ids = _ids_by_inbox_message(rows, {source: (pk, contact) for source, pk, contact in inserted if source is not None})
    return [next(unsourced) if row[2] is None else found for row, found in zip(rows, ids, strict=True)]


def _ids_by_inbox_message(rows: Sequence[Event], found: dict) -> list[tuple[int, int] | None]:
    """Each row's (event id, contact id) by its inbox message: `found` holds the rows just
    inserted; the others (already stored, or any on a database without RETURNING ids for
    skipped rows) are read in one query."""
    missing = [row[2] for row in rows if row[2] is not None and row[2] not in found]
    if missing:
        found = {**found}
        for source, pk, contact in ContactEvent.objects.filter(inbox_message_id__any=missing).values_list(
            "inbox_message_id", "pk", "contact_id"
        ):
            found[source] = (pk, contact)
    return [found.get(row[2]) if row[2] is not None else None for row in rows]
