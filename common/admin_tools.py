"""Admin helpers shared by every app: a paginator that never counts a big table, pretty JSON."""

from __future__ import annotations

import json
from typing import Any

from django.core.paginator import Paginator
from django.db import connection
from django.utils.functional import cached_property
from django.utils.html import format_html

# Counting more rows than this is not worth it: the changelist says "10000" and pages on.
COUNT_CAP = 10_000


class EstimatedCountPaginator(Paginator):
    """Counts at most COUNT_CAP rows; past that an unfiltered PostgreSQL table is estimated.

    COUNT(*) over a million-row table is the slowest part of a changelist. A capped count
    (`SELECT COUNT(*) FROM (... LIMIT cap)`) costs at most `cap` index entries and is exact for
    small results. For a whole table past the cap, pg_class.reltuples (kept by ANALYZE) is a
    free, close estimate; elsewhere the cap itself is the answer.
    """

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        counted = queryset[: COUNT_CAP + 1].count()
        if counted <= COUNT_CAP:
            return counted
        if connection.vendor == "postgresql" and not queryset.query.where:
            estimate = _reltuples(queryset.model._meta.db_table)
            if estimate > COUNT_CAP:
                return estimate
        return COUNT_CAP


def _reltuples(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] is not None else -1


def pretty_json(value: Any) -> str:
    """JSON indented inside <pre>, escaped (payloads are untrusted input)."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return format_html('<pre class="sy-json">{}</pre>', text)
