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
