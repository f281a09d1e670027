"""Fixtures and helpers for the Segment inbound tests.

The seed payloads below are copied from ../shared/seeds/ (the partners' own documentation); the
tests that use them check, when the seed files are present, that the copy still matches.
"""

from __future__ import annotations

import base64
import copy

import pytest
from django.test import Client

from integrations.models import RejectedMessage
from tests.conftest import SEEDS, SegmentClient, make_integration
from tests.seeds import SEED_PAYLOADS

ERROR_KEYS = {"success", "code", "message"}


def assert_error(response, status: int, code: str, *words: str) -> dict:
    """The contract's error answer: exactly success/code/message, message naming the field."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["success"] is False
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    for word in words:
        assert word in body["message"], (word, body["message"])
    return body


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def rejections(**filters):
    return list(RejectedMessage.objects.filter(**filters).order_by("id"))


@pytest.fixture
def anon_client(db):
    """Posts with no Authorization header (writeKey in the body, or no key at all)."""
    return SegmentClient("", Client())


@pytest.fixture
def signed(db):
    integration, key = make_integration("segment", shared_secret="s3cret")
    return SegmentClient(key), integration


@pytest.fixture
def seeds():
    return copy.deepcopy(SEED_PAYLOADS)


def seed_text(name_prefix: str) -> str | None:
    if not SEEDS.is_dir():
        return None
    for path in SEEDS.iterdir():
        if path.name.startswith(name_prefix):
            return path.read_text()
    return None


SEED_FILES = {
    "grow_identify": "000",
    "viewed_category": "000",
    "viewed_product": "000",
    "add_to_cart": "000",
    "checkout_started": "000",
    "loops_identify": "001",
    "refersion_delete": "004",
}
