"""Fixtures: a real Segment-compatible collector on 127.0.0.1, and the queue's retries left to
the test (no timer kicks a background run)."""

from __future__ import annotations

import pytest

from integrations.outbound.collector import Collector
from tests.outbound.support import WRITE_KEY


@pytest.fixture(autouse=True)
def _foreground(settings):
    settings.OUTBOUND_KICK_RETRIES = False


@pytest.fixture
def collector():
    with Collector(write_keys={WRITE_KEY}, seed=7) as running:
        yield running
