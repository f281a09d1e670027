"""The reads and the insert a drained chunk's triggers cost, done the cheap way on PostgreSQL.

The drain evaluates every matching track (bench/surveys.py: 10,000 of them). Through the ORM,
most of that time went to building model instances and to quoting `IN (…)` lists in Python.
Here each lookup is one statement with array parameters bound server-side (`= ANY(%s)`), rows
come back as tuples, and the dispatches are inserted from one JSON rows parameter for the varying
columns (common.bulk.rows_source), every other column taking one value for all rows. SQLite, used for
local work and tests, keeps the ORM's way: same answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from django.db import connection, models

from common.bulk import field_rows, rows_source, server_cursor
from contacts.models import Contact, Suppression


@dataclass(slots=True)
class ContactView:
    """What the rules read of a contact (the audience evaluator reads attributes by name)."""

    pk: int
    email: str | None
    user_id: str | None
    first_name: str
    last_name: str
    properties: dict
    subscribed: bool


def postgres() -> bool:
    return connection.vendor == "postgresql"


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _json(value: Any) -> Any:
    if isinstance(value, (bytes, str)):
        return orjson.loads(value) if value else {}
    return value if value is not None else {}


def contacts_read(ids: list[int]) -> dict[int, ContactView]:
    if not ids:
        return {}
    fields = ("id", "email", "user_id", "first_name", "last_name", "properties", "subscribed")
    if not postgres():
        rows = Contact.objects.filter(pk__in=ids).values_list(*fields)
    else:
        with server_cursor(connection) as cursor:
            cursor.execute(
                f"SELECT {', '.join(fields)} FROM {_table(Contact)} WHERE id = ANY(%b::bigint[])",  # noqa: S608
                [ids],
            )
            rows = cursor.fetchall()
    return {
        row[0]: ContactView(row[0], row[1], row[2], row[3] or "", row[4] or "", _json(row[5]), row[6]) for row in rows
    }


def suppressions_read(md5s: list[str], user_ids: list[str]) -> list[tuple[str | None, str | None, str]]:
    """(email_md5, user_id, reason) of the suppressions of these addresses or userIds."""
    if not md5s and not user_ids:
        return []
    if not postgres():
        return list(
            Suppression.objects.filter(models.Q(email_md5__in=md5s) | models.Q(user_id__in=user_ids)).values_list(
                "email_md5", "user_id", "reason"
            )
        )
    with server_cursor(connection) as cursor:
        cursor.execute(
            f"SELECT email_md5, user_id, reason FROM {_table(Suppression)} "  # noqa: S608
            "WHERE email_md5 = ANY(%b::text[]) OR user_id = ANY(%b::text[])",
            [md5s, user_ids],
        )
        return cursor.fetchall()


def surveys_read(model, contact_ids: list[int], statuses: tuple[str, ...], since: datetime) -> list[tuple]:
    """(contact id, campaign id, due_at, sent_at) of the contacts' dispatches in `statuses` due
    or sent since `since`."""
    if not contact_ids:
        return []
    if not postgres():
        return list(
            model.objects.filter(contact_id__in=contact_ids, status__in=statuses)
            .filter(models.Q(due_at__gte=since) | models.Q(sent_at__gte=since))
            .values_list("contact_id", "campaign_id", "due_at", "sent_at")
        )
    with server_cursor(connection) as cursor:
        cursor.execute(
            f"SELECT contact_id, campaign_id, due_at, sent_at FROM {_table(model)} "  # noqa: S608
            "WHERE contact_id = ANY(%b::bigint[]) AND status = ANY(%b::text[]) AND (due_at >= %b OR sent_at >= %b)",
            [contact_ids, list(statuses), since, since],
        )
        return cursor.fetchall()


def _type(field: models.Field) -> str:
    return "jsonb" if isinstance(field, models.JSONField) else field.db_type(connection)


def insert_columns(model, columns: dict[str, list], *, defaults: models.Model) -> None:
    """Insert one row per position of `columns` ({attname: values}); every other concrete field
    takes its value from `defaults`. Rows that hit a unique constraint are left out."""
    count = len(next(iter(columns.values()), []))
    if not count:
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    if not postgres():
        rows = []
        for n in range(count):
            row = model(**{f.attname: getattr(defaults, f.attname) for f in fields})
            for name, values in columns.items():
                setattr(row, name, values[n])
            rows.append(row)
        model.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
        return
    quote = connection.ops.quote_name
    varying = [f for f in fields if f.attname in columns]
    aliases = {f.attname: f"c{i}" for i, f in enumerate(varying)}
    scalar_params: list[Any] = []
    selects = []
    for field in fields:
        if field.attname in aliases:
            selects.append(f"v.{aliases[field.attname]}")
            continue
        value = field.pre_save(defaults, True)
        if isinstance(field, models.JSONField):
            value = None if value is None else orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
        else:
            value = field.get_db_prep_save(value, connection)
        if value is None:
            selects.append(f"NULL::{_type(field)}")
        else:
            selects.append(f"%s::{_type(field)}")
            scalar_params.append(value)
    rows = field_rows(
        [list(row) for row in zip(*(columns[f.attname] for f in varying), strict=True)], varying, connection
    )
    # Only the model's quoted table and column names are interpolated; values are parameters.
    sql = (
        f"INSERT INTO {_table(model)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
        f"SELECT {', '.join(selects)} FROM {rows_source(varying, connection)} AS v "
        "ON CONFLICT DO NOTHING"
    )
    with server_cursor(connection) as cursor:
        cursor.execute(sql, [*scalar_params, rows])
