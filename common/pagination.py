"""The staff API's pagination: `?limit=&offset=`, as DRF's, with a ceiling on `limit`.

DRF's LimitOffsetPagination takes any positive limit; a 23-digit one reached PostgreSQL as a
LIMIT beyond bigint and failed with a 500. A larger limit is read as the ceiling, as DRF does
with `max_limit`. (An offset past the end already answers an empty page before any query.)
"""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination


class Pagination(LimitOffsetPagination):
    max_limit = 1000
