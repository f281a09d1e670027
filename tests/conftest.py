"""Shared fixtures: integrations with keys, a Segment-shaped client, seed payloads."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

import pytest
from django.test import Client

from integrations.drain import drain_inbox
from integrations.services import integration_create

SEEDS = Path(__file__).resolve().parent.parent.parent / "shared" / "seeds"


class SegmentClient:
    """Posts to the inbound endpoints the way Segment and its libraries do."""

    def __init__(self, key: str, client: Client | None = None) -> None:
        self.key = key
        self.client = client or Client()

    def post(self, path: str, body, *, auth: str = "basic", gzip_body: bool = False, headers: dict | None = None):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        extra = dict(headers or {})
        if auth == "basic":
            extra["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(f"{self.key}:".encode()).decode()
        elif auth == "bearer":
            extra["HTTP_AUTHORIZATION"] = f"Bearer {self.key}"
        if gzip_body:
            raw = gzip.compress(raw)
            extra["HTTP_CONTENT_ENCODING"] = "gzip"
        return self.client.post(path, data=raw, content_type="application/json", **extra)


def make_integration(kind: str = "segment", name: str | None = None, **settings):
    integration, key = integration_create(kind=kind, name=name or f"{kind} test", settings=settings)
    return integration, key


@pytest.fixture
def segment(db):
    integration, key = make_integration("segment")
    return SegmentClient(key), integration


@pytest.fixture
def drain(db):
    def run():
        return drain_inbox(max_seconds=30)

    return run


@pytest.fixture
def staff(client, db):
    """The test client logged in as a superuser."""
    from tests.test_admin_support import make_superuser

    make_superuser()
    client.login(username="admin", password="pw-for-tests-only")
    return client


@pytest.fixture(autouse=True)
def _forget_remembered_keys():
    """Each test starts with no API key remembered from another test's (rolled back) data."""
    from integrations.keys import api_key_cache_clear

    api_key_cache_clear()
    yield
