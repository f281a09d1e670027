"""Bulk writes for the hot paths.

Django's `bulk_update` builds one CASE WHEN per column per row; at 500 rows a chunk it was most
of the drain's time. On PostgreSQL the rows go as one JSON parameter (an array of arrays, see
`rows_source`): one short statement whatever the row count. SQLite keeps Django's version.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

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


# Values of these fields go into the JSON as they are: orjson writes str, int, float, bool,
# datetime, date, time and UUID (and _json_default Decimal) in forms PostgreSQL's casts read
# back exactly.
_AS_IS = {
    "AutoField", "BigAutoField", "SmallAutoField", "BigIntegerField", "BooleanField", "CharField",
    "DateField", "DateTimeField", "DecimalField", "EmailField", "FloatField", "ForeignKey", "GenericIPAddressField",
    "IntegerField", "OneToOneField", "PositiveBigIntegerField", "PositiveIntegerField",
    "PositiveSmallIntegerField", "SlugField", "SmallIntegerField", "TextField", "TimeField", "URLField",
    "UUIDField",
}  # fmt: skip
_TEXT = {"CharField", "EmailField", "SlugField", "TextField", "URLField"}


def _json_default(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, timedelta):
        return f"{value // timedelta(microseconds=1)} microseconds"
    raise TypeError(f"{type(value).__name__} cannot be written in bulk")


def _column_sql(field: models.Field, index: int, connection) -> str:
    """The expression that reads column `index` of a JSON row `r` as the field's type."""
    internal = field.get_internal_type()
    if isinstance(field, models.JSONField):
        # JSON null in the row is SQL NULL, as Django writes None.
        return f"NULLIF(r->{index}, 'null'::jsonb)"
    if internal in _TEXT:
        return f"r->>{index}"  # assigned to the column as text: too long is an error, not cut
    return f"(r->>{index})::{field.rel_db_type(connection) if field.is_relation else field.db_type(connection)}"


def json_rows(rows: Sequence[Sequence]) -> str:
    """Rows of plain values as one JSON array of arrays: the parameter `rows_source` reads."""
    return orjson.dumps(rows, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode()


def rows_source(fields: Sequence[models.Field], connection) -> str:
    """A subquery `(SELECT … AS c0, … AS cN FROM jsonb_array_elements(%s::jsonb) r)` over
    `json_rows`' rows: column i of the rows is field i, typed as its column.

    One text parameter for the whole batch. Python's cost is one orjson call; binding every
    value of per-column arrays in Python was most of a bulk statement's time, and PostgreSQL
    reads the JSON faster than it unpacks the arrays.
    """
    columns = ", ".join(f"{_column_sql(f, i, connection)} AS c{i}" for i, f in enumerate(fields))
    return f"(SELECT {columns} FROM jsonb_array_elements(%s::jsonb) AS r)"  # noqa: S608 - column casts only


def _fills_on_save(field: models.Field) -> bool:
    """Whether pre_save does more than read the attribute (auto_now, auto_now_add, files…)."""
    if type(field).pre_save is models.Field.pre_save:
        return False
    if isinstance(field, models.DateField | models.TimeField):  # DateTimeField is a DateField
        return field.auto_now or field.auto_now_add
    return True


def object_rows(objs: Sequence[models.Model], fields: Sequence[models.Field], connection, *, adding=False) -> str:
    """`json_rows` of the objects' field values; `adding` runs pre_save (auto_now and the like)
    as an insert would. Values of the common types go as they are, the rest in database form."""
    attnames = [f.attname for f in fields]
    values = [[getattr(obj, a) for a in attnames] for obj in objs]
    if adding:
        saving = [(i, f) for i, f in enumerate(fields) if _fills_on_save(f)]
        for obj, row in zip(objs, values, strict=True):
            for i, field in saving:
                row[i] = field.pre_save(obj, True)
    return field_rows(values, fields, connection)


def field_rows(values: list[list], fields: Sequence[models.Field], connection) -> str:
    """`json_rows` of rows of field values (column i of field i): the common types go as they
    are, the others in their database form."""
    odd = [
        (i, f)
        for i, f in enumerate(fields)
        if not isinstance(f, models.JSONField) and f.get_internal_type() not in _AS_IS
    ]
    if odd:
        for row in values:
            for i, field in odd:
                row[i] = field.get_db_prep_save(row[i], connection)
    return json_rows(values)


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
    assignments = ", ".join(f"{quote(f.column)} = v.c{i}" for i, f in enumerate(targets, start=1))
    # Only quoted model table and column names are interpolated; values are one parameter.
    sql = (
        f"UPDATE {quote(meta.db_table)} AS t SET {assignments} "  # noqa: S608
        f"FROM {rows_source([pk, *targets], connection)} AS v "
        f"WHERE t.{quote(pk.column)} = v.c0"
    )
    with server_cursor(connection) as cursor:
        cursor.execute(sql, [object_rows(objs, [pk, *targets], connection)])
        return cursor.rowcount


def bulk_insert(model: type[models.Model], objs: Sequence[models.Model], *, ignore_conflicts: bool = False) -> None:
    """Insert `objs` in one statement; without `ignore_conflicts`, set their primary keys.

    Django's bulk_create binds client-side, quoting every value in Python; here the rows are
    one JSON parameter bound server-side. With `ignore_conflicts` rows that hit a unique
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
    conflict = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    names = ", ".join(f"c{i}" for i in range(len(fields)))
    # Only quoted model table and column names are interpolated; values are one parameter.
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
        f"SELECT {names} FROM {rows_source(fields, connection)} AS v{conflict} RETURNING {quote(pk.column)}"
    )
    with server_cursor(connection) as cursor:
        cursor.execute(sql, [object_rows(objs, fields, connection, adding=True)])
        pks = [row[0] for row in cursor.fetchall()]
    if not ignore_conflicts:
        # RETURNING follows the order of the JSON's rows, as Django's own bulk_create relies on.
        for obj, value in zip(objs, pks, strict=True):
            setattr(obj, pk.attname, value)
            obj._state.adding = False
            obj._state.db = connection.alias


def instances(model: type[models.Model], rows, connection) -> list[models.Model]:
    """Model instances from raw rows holding the model's concrete columns, in order.

    What a RawQuerySet does, without resolving the columns again for every row (most of its
    time on a 500-row claim): the fields' converters are looked up once.
    """
    fields = model._meta.concrete_fields
    names = [f.attname for f in fields]
    columns = [f.get_col(model._meta.db_table) for f in fields]
    converters = [
        (i, funcs)
        for i, col in enumerate(columns)
        if (funcs := [*connection.ops.get_db_converters(col), *col.get_db_converters(connection)])
    ]
    built = []
    for row in rows:
        values = list(row[: len(fields)])
        for i, funcs in converters:
            for func in funcs:
                values[i] = func(values[i], columns[i], connection)
        built.append(model.from_db(connection.alias, names, values))
    return built
