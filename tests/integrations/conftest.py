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


_RETENTION_CONTEXT = {
    "app": {"name": "retention", "version": "1.0"},
    "library": {"name": "unknown", "version": "unknown"},
}

SEED_PAYLOADS = {
    # 000 Retention.com: the Grow contact payload.
    "grow_identify": {
        "anonymousId": "224ee0abc232ba012cc7932ca74609d9",
        "context": _RETENTION_CONTEXT,
        "integrations": {},
        "messageId": "api-2fBtljNDdeWNJCnhTKt2IYMSFwc",
        "originalTimestamp": "2024-04-16T16:54:09.697Z",
        "receivedAt": "2024-04-16T16:54:10.697Z",
        "timestamp": "2024-04-16T16:54:09.697Z",
        "traits": {
            "address_city": None,
            "address_line_1": None,
            "address_postal": None,
            "address_state": None,
            "clicked_at": "2024-04-16T16:54:09.668Z",
            "created_at": "2024-04-16T16:54:09.668Z",
            "email": "user_testing1@retention.com",
            "email_domain": "retention.com",
            "extra_data": None,
            "first_name": None,
            "id": 6,
            "landing_page_domain": "haley-runolfsdottir.example",
            "landing_page_url": "http://haley-runolfsdottir.example/launa",
            "last_name": None,
            "page_title": None,
            "referrer": "http://huels.test/brianne",
            "updated_at": "2024-04-16T16:54:09.668Z",
        },
        "type": "identify",
    },
    # 000 Retention.com: Reclaim events.
    "viewed_category": {
        "anonymousId": "a695d9cffa3a88572b6735fc9e742e82",
        "context": _RETENTION_CONTEXT,
        "email": "user_testing5@retention.com",
        "event": "Viewed Category Reclaim",
        "integrations": {},
        "messageId": "api-2fBtoemXhkvlrIFJpHyqO84xPWq",
        "originalTimestamp": "2024-04-16T16:54:32.697Z",
        "properties": {
            "EventSource": "Reclaim",
            "Name": "Marshmallows",
            "URL": "http://mccullough.example/albert.mosciski",
            "brand": "Cupcake",
            "image_url": "https://loremflickr.com/300/300",
            "name": "Marshmallows",
            "price": 8,
            "product_id": 6702700412,
            "url": "http://mccullough.example/albert.mosciski",
        },
        "receivedAt": "2024-04-16T16:54:33.632Z",
        "timestamp": "2024-04-16T16:54:32.697Z",
        "type": "track",
    },
    "viewed_product": {
        "anonymousId": "165ac1286d182f6998bc3236affbda09",
        "context": _RETENTION_CONTEXT,
        "email": "user_testing3@retention.com",
        "event": "Viewed Product Reclaim",
        "integrations": {},
        "messageId": "api-2fBtnWAtJqhvtvIlD5dEnBus0Ik",
        "originalTimestamp": "2024-04-16T16:54:23.497Z",
        "properties": {
            "Brand": "Coffee Cake",
            "Currency": "",
            "CurrencyPrice": "$47",
            "EventSource": "Reclaim",
            "ImageURL": "https://loremflickr.com/300/300",
            "Name": "Chocolate Sprinkles",
            "Price": "47",
            "ProductID": 9229193849,
            "URL": "http://rempel-collier.example/salvador_bogan",
            "Variant": "",
            "VariantID": "",
            "brand": "Coffee Cake",
            "image_url": "https://loremflickr.com/300/300",
            "name": "Chocolate Sprinkles",
            "price": 47,
            "product_id": 9229193849,
            "url": "http://rempel-collier.example/salvador_bogan",
        },
        "receivedAt": "2024-04-16T16:54:24.321Z",
        "timestamp": "2024-04-16T16:54:23.497Z",
        "type": "track",
    },
    "add_to_cart": {
        "anonymousId": "6c51ac0761f7db42cbf6726b4df6d441",
        "context": _RETENTION_CONTEXT,
        "email": "jorge@retention.com",
        "event": "Add To Cart Reclaim",
        "integrations": {},
        "messageId": "api-2fBtmil7sIb22hp0VuCVKKO4JOQ",
        "originalTimestamp": "2024-04-16T16:54:17.519Z",
        "properties": {
            "Brand": "Brownie",
            "CartSource": "GE",
            "CompareAtPrice": "",
            "Currency": "",
            "CurrencyPrice": "$64",
            "EventSource": "Reclaim",
            "ImageURL": "https://pigment.github.io/fake-logos/logos/medium/color/2.png",
            "Name": "Berry Compote",
            "Price": "64",
            "ProductID": 4891833341,
            "Quantity": 1,
            "URL": "http://krajcik.test/emerita",
            "Variant": "",
            "VariantID": "",
        },
        "receivedAt": "2024-04-16T16:54:18.505Z",
        "timestamp": "2024-04-16T16:54:17.519Z",
        "type": "track",
    },
    "checkout_started": {
        "anonymousId": "6c51ac0761f7db42cbf6726b4df6d441",
        "context": _RETENTION_CONTEXT,
        "email": "jorge@retention.com",
        "event": "Checkout Started Reclaim",
        "integrations": {},
        "messageId": "api-2fBtpI6fKSb27s567KICPrJ7jQy",
        "originalTimestamp": "2024-04-16T16:54:38.321Z",
        "properties": {
            "EventSource": "Reclaim",
            "cart_amount": 78.05,
            "cart_id": "aea3ijd1scjzdv071h",
            "currency": "USD",
            "line_items": [
                {
                    "id": 2804981569430,
                    "quantity": 3,
                    "title": "Frosting",
                    "variant": {
                        "id": 4109397553956,
                        "image": {"src": "https://loremflickr.com/300/300"},
                        "price": {"amount": 0.05, "currency_code": "USD"},
                        "product": {"id": 8040897659578, "title": "Ice Cream", "type": "Chocolate Sprinkles"},
                        "sku": "fylqm75",
                        "title": "Pie",
                    },
                }
            ],
            "test_event": True,
        },
        "receivedAt": "2024-04-16T16:54:39.252Z",
        "timestamp": "2024-04-16T16:54:38.321Z",
        "type": "track",
    },
    # 001 Loops: the test event of its Segment guide (the email is as the seed has it).
    "loops_identify": {
        "messageId": "segment-test-message-gt3ds8",
        "timestamp": "2023-05-24T17:58:30.352Z",
        "type": "identify",
        "email": "[email protected]",
        "traits": {
            "firstName": "Adam",
            "favoriteColor": "blue",
            "favoriteNumber": 42,
            "mailingLists": [{"listId": "1234567890", "subscribed": True}],
        },
        "userId": "test-user-a5h7xb",
    },
    # 004 Refersion: the delete request, with Segment's "context": [] and "integrations": [].
    "refersion_delete": {
        "type": "delete",
        "channel": "server",
        "messageId": "delete-022bb90c-bbac-11e4-8dfc-aa07a5b093db",
        "projectId": "abcd123",
        "userId": "5678",
        "context": [],
        "integrations": [],
        "email": "peter@example.com",
        "receivedAt": "2019-02-19T23:58:54.387Z",
        "sentAt": "2019-02-19T21:58:54.387Z",
        "originalTimestamp": "2019-02-19T23:58:54.387Z",
        "timestamp": "2019-02-19T23:58:54.387Z",
    },
}
SEED_FILES = {
    "grow_identify": "000",
    "viewed_category": "000",
    "viewed_product": "000",
    "add_to_cart": "000",
    "checkout_started": "000",
    "loops_identify": "001",
    "refersion_delete": "004",
}
