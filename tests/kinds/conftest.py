"""Each kind against recorded partner payloads (tests/fixtures/<partner>/*.json), without HTTP.

`apply` turns fixtures into inbox rows the way the endpoints do (spec.normalize), stores them,
and hands them to the drain's apply step as one chunk: the kind's rules alone decide each
row's status.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from integrations.drain import apply_rows
from integrations.inbound.spec import normalize
from integrations.lanes import lane_of
from integrations.models import InboxMessage
from tests.conftest import make_integration

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
RECEIVED = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def apply(integration, *payloads: dict) -> list[InboxMessage]:
    """Store the payloads as one chunk of inbox rows, apply it, and return the rows as saved."""
    rows = []
    for payload in payloads:
        fields = normalize(payload, path_type=None, received_at=RECEIVED)
        rows.append(
            InboxMessage(
                integration=integration,
                received_at=RECEIVED,
                lane=lane_of(fields["user_id"], fields["anonymous_id"]),
                status="processing",
                attempts=1,
                **fields,
            )
        )
    InboxMessage.objects.bulk_create(rows)
    rows = list(InboxMessage.objects.filter(pk__in=[r.pk for r in rows]).select_related("integration"))
    rows.sort(key=lambda r: (r.timestamp, r.pk))
    apply_rows(rows)
    return list(InboxMessage.objects.filter(pk__in=[r.pk for r in rows]).order_by("timestamp", "pk"))


@pytest.fixture
def kind(db):
    def make(name: str, **settings):
        integration, _key = make_integration(name, **settings)
        return integration

    return make
