"""`field__any=values`: membership in a list of values sent as one array parameter.

`field__in=values` writes one placeholder per value. For the drain's chunk-sized lists (hundreds
of userIds, emails, anonymousIds) psycopg then spent more time splitting and quoting the query
than PostgreSQL spent running it. On PostgreSQL `__any` is `field = ANY(%s)` with the list as
one array; elsewhere it is the same IN as `__in`. It takes a list of values, not a queryset.
"""

from __future__ import annotations

from django.core.exceptions import EmptyResultSet
from django.db.models import Field, ForeignObject, Lookup

# Values already of the column's Python type go as they are (the drain's lists are thousands
# of plain strings; preparing each one through the field was most of a lookup's cost).
_TEXT = {"CharField", "EmailField", "SlugField", "TextField", "URLField"}
_INTEGER = {"AutoField", "BigAutoField", "BigIntegerField", "IntegerField", "SmallAutoField", "SmallIntegerField"}


def _plain_type(field) -> type | None:
    target = field.target_field if field.is_relation else field
    internal = target.get_internal_type()
    return str if internal in _TEXT else int if internal in _INTEGER else None


class AnyOf(Lookup):
    lookup_name = "any"

    def get_prep_lookup(self):
        field = self.lhs.output_field
        values = [value for value in self.rhs if value is not None]
        plain = _plain_type(field)
        self.plain = plain is not None and all(type(value) is plain for value in values)
        return values if self.plain else [field.get_prep_value(value) for value in values]

    def _values(self, connection) -> list:
        if self.plain:
            return self.rhs
        field = self.lhs.output_field
        return [field.get_db_prep_value(value, connection, prepared=True) for value in self.rhs]

    def as_sql(self, compiler, connection):
        values = self._values(connection)
        if not values:
            raise EmptyResultSet
        lhs, params = self.process_lhs(compiler, connection)
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", (*params, *values)

    def as_postgresql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", (*params, self._values(connection))


# Relations keep lookups of their own (related_lookups): register there too, for `contact__any`.
Field.register_lookup(AnyOf)
ForeignObject.register_lookup(AnyOf)
