"""Bulk writes for the hot paths.

Django's `bulk_update` builds one CASE WHEN per column per row; at 500 rows a chunk it was most
of the drain's time. On PostgreSQL we send each column as one array parameter and join on
`unnest(...)`: one short statement whatever the row count. SQLite keeps Django's version.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import orjson
from django.db import connections, models, router


@contextmanager
def server_cursor(connection) -> Iterator:
    """A psycopg cursor with server-side parameter binding, in the Django connection's transaction.

    Django's PostgreSQL cursors bind client-side: every array element is quoted in Python,
    which cost more than the statement itself for 500-row arrays. Server-side binding sends
    the arrays as parameters.
    """
    import psycopg

    # As Django's own cursor() does: on the first statement of a request over a kept connection
    # (CONN_MAX_AGE), check it (CONN_HEALTH_CHECKS) and replace it when the server has dropped
    # it. Without this, when the inbound store was a request's first statement (the key came
    # from the key memory), the first request on each process after a database restart
    # answered 503.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    # Errors surface as Django's DatabaseError family, as from any Django cursor.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


def _value(field: models.Field, value, connection):
    if isinstance(field, models.JSONField):
        return None if value is None else orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    return field.get_db_prep_save(value, connection)


def _array_type(field: models.Field, connection) -> str:
    if isinstance(field, models.JSONField):
        return "jsonb[]"
    return f"{field.db_type(connection)}[]"


def bulk_update(model: type[models.Model], objs: Sequence[models.Model], fields: Sequence[str]) -> int:
    """Write `fields` of every object in `objs` (matched by primary key). Returns the row count."""
    if not objs:
        return 0
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        return model.objects.bulk_update(objs, list(fields), batch_size=500)
    meta = model._meta
    pk = meta.pk
    targets = [meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    columns = [quote(f.column) for f in targets]
    aliases = [f"c{i}" for i in range(len(targets))]
    params = [[_value(pk, obj.pk, connection) for obj in objs]]
    params += [[_value(f, getattr(obj, f.attname), connection) for obj in objs] for f in targets]
    arrays = ", ".join(f"%b::{_array_type(f, connection)}" for f in [pk, *targets])
    assignments = ", ".join(f"{column} = v.{alias}" for column, alias in zip(columns, aliases, strict=True))
    # Only quoted model table and column names are interpolated; values are array parameters.
    sql = (
        f"UPDATE {quote(meta.db_table)} AS t SET {assignments} "  # noqa: S608
        f"FROM unnest({arrays}) AS v(pk, {', '.join(aliases)}) "
        f"WHERE t.{quote(pk.column)} = v.pk"
    )
    with server_cursor(connection) as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def bulk_insert(model: type[models.Model], objs: Sequence[models.Model], *, ignore_conflicts: bool = False) -> None:
    """Insert `objs` in one statement; without `ignore_conflicts`, set their primary keys.

    Django's bulk_create binds client-side, quoting every value in Python; here each column is
    one array parameter bound server-side. With `ignore_conflicts` rows that hit a unique
    constraint are skipped and primary keys are not set (which rows were new is unknown).
    """
    if not objs:
        return
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs, ignore_conflicts=ignore_conflicts, batch_size=500)
        return
    meta = model._meta
    pk = meta.pk
    fields = [f for f in meta.local_concrete_fields if f is not pk]
    quote = connection.ops.quote_name
    params = [[_value(f, f.pre_save(obj, True), connection) for obj in objs] for f in fields]
    arrays = ", ".join(f"%b::{_array_type(f, connection)}" for f in fields)
    conflict = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    # Only quoted model table and column names are interpolated; values are array parameters.
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
        f"SELECT * FROM unnest({arrays}){conflict} RETURNING {quote(pk.column)}"
    )
    with server_cursor(connection) as cursor:
        cursor.execute(sql, params)
        pks = [row[0] for row in cursor.fetchall()]
    if not ignore_conflicts:
        # RETURNING follows the order of unnest's rows, as Django's own bulk_create relies on.
        for obj, value in zip(objs, pks, strict=True):
            setattr(obj, pk.attname, value)
            obj._state.adding = False
            obj._state.db = connection.alias
