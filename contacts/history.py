"""The contacts' history (ContactChange rows), written in bulk.

The drain records tens of thousands of changes a minute, so rows go in as plain tuples and one
INSERT … SELECT from one JSON rows parameter on PostgreSQL (common.bulk.rows_source), with no
model instance per change (building those cost more than the insert). Other databases use bulk_create.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connections, router

from common.bulk import json_rows, rows_source, server_cursor
from contacts.models import ContactChange

# (contact id, inbox message id or None, kind, name, old, new, at, actor)
Change = tuple[int, int | None, str, str, Any, Any, datetime, str]
_COLUMNS = ("contact", "inbox_message_id", "kind", "name", "old", "new", "at", "actor")


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
