"""Affiliates test helpers: integrations, offers and affiliates, and messages applied as a chunk
the way the drain applies them (tests.kinds.conftest.apply)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from affiliates.models import Affiliate, AffiliateStatus, Offer
from tests.clients.conftest import browser, switchyard, switchyard_server  # noqa: F401 - the live server fixtures
from tests.conftest import make_integration
from tests.kinds.conftest import apply, fixture  # noqa: F401 - re-exported for the tests here

ADDRESS = {"street": "1 Initech Way", "city": "Austin", "state": "TX", "postalCode": "78701", "country": "US"}


@pytest.fixture
def refersion(db):
    def make(**settings):
        integration, _key = make_integration("refersion", **settings)
        return integration

    return make


@pytest.fixture
def segment_kind(db):
    integration, _key = make_integration("segment", name="website")
    return integration


def make_offer(**fields) -> Offer:
    values = {
        "name": "Standard",
        "commission_type": "percent",
        "commission_value": Decimal("10"),
        "cookie_days": 30,
        "landing_url": "http://127.0.0.1:9/shop?x=1",
    }
    values.update(fields)
    return Offer.objects.create(**values)


def make_affiliate(code: str = "PETER", *, email: str = "aff@example.com", offer=None, **fields) -> Affiliate:
    values = {
        "email": email,
        "first_name": "Aff",
        "last_name": "Iliate",
        "referral_code": code,
        "status": AffiliateStatus.ACTIVE,
        "offer": offer,
    }
    values.update(fields)
    return Affiliate.objects.create(**values)


def identify(
    traits: dict, *, user_id: str = "5678", message_id: str = "id-1", ts: str = "2024-01-10T10:00:00Z", **extra
):
    return {"type": "identify", "userId": user_id, "messageId": message_id, "timestamp": ts, "traits": traits, **extra}


def track(
    event: str, properties: dict, *, message_id: str, user_id: str = "", anonymous_id: str = "", ts: str, **extra
):
    body = {
        "type": "track",
        "event": event,
        "messageId": message_id,
        "timestamp": ts,
        "properties": properties,
        **extra,
    }
    if user_id:
        body["userId"] = user_id
    if anonymous_id:
        body["anonymousId"] = anonymous_id
    return body


def page(url: str, *, anonymous_id: str, message_id: str, ts: str, user_id: str = "", **extra):
    body = {
        "type": "page",
        "anonymousId": anonymous_id,
        "messageId": message_id,
        "timestamp": ts,
        "context": {"page": {"url": url, "referrer": "https://blog.example/post"}, "userAgent": "Mozilla/5.0 test"},
        "properties": {"url": url},
        **extra,
    }
    if user_id:
        body["userId"] = user_id
    return body
