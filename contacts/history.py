"""The contacts' history (ContactChange rows), written in bulk.

The drain records tens of thousands of changes a minute, so rows go in as plain tuples and one
INSERT … SELECT FROM unnest(arrays) on PostgreSQL, with no model instance per change (building
those cost more than the insert). Other databases use bulk_create.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from django.db import connections, router

from common.bulk import server_cursor
from contacts.models import ContactChange

# (contact id, inbox message id or None, kind, name, old, new, at, actor)
Change = tuple[int, int | None, str, str, Any, Any, datetime, str]

INSERT = (
    "INSERT INTO contacts_contactchange (contact_id, inbox_message_id, kind, name, old, new, at, actor) "
    "SELECT * FROM unnest(%b::bigint[], %b::bigint[], %b::varchar[], %b::varchar[], %b::jsonb[], %b::jsonb[], "
    "%b::timestamptz[], %b::varchar[])"
)


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


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
    contacts, sources, kinds, names, olds, news, ats, actors = zip(*rows, strict=True)
    params = [
        list(contacts),
        list(sources),
        list(kinds),
        [name[:255] for name in names],
        [_json(v) for v in olds],
        [_json(v) for v in news],
        list(ats),
        [actor[:100] for actor in actors],
    ]
    with server_cursor(connection) as cursor:
        cursor.execute(INSERT, params)
