"""Survey responses as CSV, streamed (the admin's export and the API's ?format=csv).

Columns as the API names them: id, campaign, contact, email, score, comment, created_at,
updated_at. A cell that a spreadsheet would run as a formula (it starts with =, +, -, @, a tab
or a carriage return: a respondent's comment is untrusted) is prefixed with a quote.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.http import StreamingHttpResponse

COLUMNS = ("id", "campaign", "contact", "email", "score", "comment", "created_at", "updated_at")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class _Line:
    def write(self, value: str) -> str:
        return value


def _cell(value) -> str:
    if value is None:
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    if isinstance(value, str) and text.startswith(FORMULA_START):
        return "'" + text
    return text


def rows(queryset) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(COLUMNS)
    values = queryset.values_list(
        "id", "campaign_id", "contact_id", "email", "score", "comment", "created_at", "updated_at"
    )
    for row in values.iterator(chunk_size=2000):
        yield writer.writerow([_cell(value) for value in row])


def responses_csv_response(queryset, *, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(rows(queryset), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
