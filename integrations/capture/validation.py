"""Checking what the capture script posts, all of it, before anything is stored.

A request is one visitor's few events:

    {"key": "sk_…", "anonymousId": "…", "sentAt": "…",
     "events": [{"type": "page" | "track" | "identify", "messageId": "…", "timestamp": "…",
                 "url": "…", "title": "…", "referrer": "…",
                 "event": "Product Viewed", "properties": {…},        (track)
                 "email": "…", "traits": {"first_name": …, …}}]}     (identify)

Any problem refuses the whole request with a CaptureError naming the field (never half of it
stored). What passes becomes Segment-shaped inbox rows: the drain applies them as the
segment_source kind's own messages (integrations/capture/kind.py).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

from contacts.traits import clean_email
from integrations.inbound.spec import event_time, parse_timestamp
from integrations.outbound.payloads import CAPTURE_EVENTS

MAX_BODY_BYTES = 64 * 1024
MAX_EVENTS = 20
MAX_EVENT_BYTES = 32 * 1024
MAX_PRODUCTS = 100
ANONYMOUS_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
MESSAGE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
CURRENCY = re.compile(r"^[A-Za-z]{3}$")
LIBRARY = {"name": "switchyard-capture", "version": "1"}

NUMBERS = ("price", "value", "revenue", "total", "amount", "cart_amount", "compare_at_price", "shipping", "tax")
INTEGERS = ("quantity", "position")
TEXTS = (
    "product_id",
    "sku",
    "name",
    "brand",
    "variant",
    "variant_id",
    "category",
    "url",
    "image_url",
    "cart_id",
    "checkout_id",
    "order_id",
    "list_id",
    "coupon",
    "cart_source",
)
URLS = ("url", "image_url")
TEXT_MAX = 500
REQUIRED = {
    "Product Viewed": (("product_id", "sku", "name"), "product_id, sku or name"),
    "Product Added": (("product_id", "sku", "name"), "product_id, sku or name"),
    "Product List Viewed": (("category", "list_id", "name"), "category, list_id or name"),
    "Checkout Started": (("cart_id", "checkout_id"), "cart_id"),
}


class CaptureError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def bad(field: str, rule: str, code: str = "invalid_field") -> CaptureError:
    return CaptureError(400, code, f"{field} {rule}")


def parse_body(body: bytes) -> dict:
    if len(body) > MAX_BODY_BYTES:
        raise CaptureError(413, "too_large", f"the request body is over {MAX_BODY_BYTES // 1024} KB")
    if not body.strip():
        raise CaptureError(400, "invalid_json", "the body is empty; send a JSON object")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise CaptureError(400, "invalid_json", f"the body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise CaptureError(400, "invalid_body", "the body must be a JSON object")
    return data


def _text(value: Any, field: str, *, max_length: int = TEXT_MAX, required: bool = False) -> str:
    if value is None or value == "":
        if required:
            raise bad(field, "is required", "missing_field")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise bad(field, f"must be a string, not {type(value).__name__}")
    text = str(value)
    if len(text) > max_length:
        raise bad(field, f"must be at most {max_length} characters")
    if "\x00" in text:
        raise bad(field, "contains a NUL character, which is not allowed")
    return text


def _url(value: Any, field: str, *, required: bool = False) -> str:
    text = _text(value, field, max_length=2000, required=required)
    if not text:
        return ""
    try:
        parts = urlsplit(text)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad(field, "must be an http:// or https:// URL")
    return text


def _number(value: Any, field: str) -> int | float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise bad(field, "must be a number")
    if isinstance(value, str):
        try:
            value = float(value.replace(",", ""))
        except ValueError:
            raise bad(field, "must be a number") from None
    if not isinstance(value, int | float) or (isinstance(value, float) and not math.isfinite(value)):
        raise bad(field, "must be a number")
    if abs(value) > 1e12:
        raise bad(field, "is out of range")
    return value


def check_properties(properties: Any, field: str, *, nested: bool = False) -> dict:
    """Known e-commerce keys must have their type; other keys may hold short scalars."""
    if properties is None:
        return {}
    if not isinstance(properties, dict):
        raise bad(field, "must be an object")
    for key, value in properties.items():
        name = f"{field}.{key}"
        if len(key) > 100:
            raise bad(field, "has a key longer than 100 characters")
        if key in NUMBERS:
            _number(value, name)
        elif key in INTEGERS:
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100_000
            ):
                raise bad(name, "must be a whole number from 0 to 100000")
        elif key == "currency":
            if value not in (None, "") and not (isinstance(value, str) and CURRENCY.match(value)):
                raise bad(name, "must be a three-letter currency code such as USD")
        elif key in URLS:
            _url(value, name)
        elif key in TEXTS:
            _text(value, name)
        elif key == "products" and not nested:
            if not isinstance(value, list) or len(value) > MAX_PRODUCTS:
                raise bad(name, f"must be a list of at most {MAX_PRODUCTS} products")
            for index, product in enumerate(value):
                check_properties(product, f"{name}[{index}]", nested=True)
                if not isinstance(product, dict):
                    raise bad(f"{name}[{index}]", "must be an object")
        elif key == "line_items" and not nested:
            if not isinstance(value, list) or len(value) > MAX_PRODUCTS:
                raise bad(name, f"must be a list of at most {MAX_PRODUCTS} line items")
            if any(not isinstance(item, dict) for item in value):
                raise bad(name, "must hold objects")
        elif key == "test_event":
            if not isinstance(value, bool):
                raise bad(name, "must be true or false")
        elif value is not None and not isinstance(value, str | int | float | bool):
            raise bad(name, "must be a string, a number or true/false")
        elif isinstance(value, str):
            _text(value, name)
    return properties


def check_traits(traits: Any, field: str) -> dict:
    if traits is None:
        return {}
    if not isinstance(traits, dict):
        raise bad(field, "must be an object")
    clean: dict[str, Any] = {}
    for key in ("first_name", "last_name"):
        if key in traits:
            clean[key] = _text(traits[key], f"{field}.{key}", max_length=200)
    extra = {k: v for k, v in traits.items() if k not in ("first_name", "last_name", "email")}
    if len(extra) > 20:
        raise bad(field, "may hold at most 20 fields besides first_name and last_name")
    for key, value in extra.items():
        if len(key) > 100:
            raise bad(field, "has a key longer than 100 characters")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise bad(f"{field}.{key}", "must be a string, a number or true/false")
        if isinstance(value, str):
            _text(value, f"{field}.{key}", max_length=TEXT_MAX)
    if extra:
        clean["extra"] = extra
    return clean


def check_event(raw: Any, index: int, *, anonymous_id: str, sent_at: Any, received_at: datetime, context: dict):
    """One event → one inbox row (a dict for integrations.inbound.store), or CaptureError."""
    field = f"events[{index}]"
    if not isinstance(raw, dict):
        raise bad(field, "must be an object")
    if len(orjson.dumps(raw)) > MAX_EVENT_BYTES:
        raise CaptureError(413, "too_large", f"{field} is over {MAX_EVENT_BYTES // 1024} KB")
    kind = raw.get("type")
    if kind not in ("page", "track", "identify"):
        raise bad(f"{field}.type", "must be page, track or identify", "invalid_field" if kind else "missing_field")
    message_id = raw.get("messageId")
    if not isinstance(message_id, str) or not MESSAGE_ID.match(message_id):
        raise bad(f"{field}.messageId", "is required: 1 to 64 letters, digits, '.', '_', ':' or '-'", "missing_field")
    stamp = raw.get("timestamp")
    if stamp not in (None, "") and parse_timestamp(stamp) is None:
        raise bad(f"{field}.timestamp", "must be an ISO 8601 time")
    page = {
        "url": _url(raw.get("url"), f"{field}.url", required=kind == "page"),
        "title": _text(raw.get("title"), f"{field}.title"),
        "referrer": _text(raw.get("referrer"), f"{field}.referrer", max_length=2000),
    }
    if page["url"]:
        page["path"] = urlsplit(page["url"]).path
    message: dict[str, Any] = {
        "type": kind,
        "anonymousId": anonymous_id,
        "messageId": message_id,
        "context": {**context, "page": page, "library": LIBRARY},
    }
    email, event = "", ""
    if kind == "page":
        message["properties"] = dict(page)
    elif kind == "track":
        event = raw.get("event")
        if not isinstance(event, str) or not event:
            raise bad(f"{field}.event", "is required on track events", "missing_field")
        if event not in CAPTURE_EVENTS:
            raise bad(f"{field}.event", f"must be one of {', '.join(CAPTURE_EVENTS)}, not {event[:60]!r}")
        properties = check_properties(raw.get("properties"), f"{field}.properties")
        keys, names = REQUIRED.get(event, ((), ""))
        if keys and not any(properties.get(key) not in (None, "") for key in keys):
            raise bad(f"{field}.properties", f"needs {names} for {event}", "missing_field")
        message["event"] = event
        message["properties"] = properties
    else:
        email = clean_email(raw.get("email")) or ""
        if not email:
            code = "missing_field" if raw.get("email") in (None, "") else "invalid_field"
            raise bad(f"{field}.email", "must be a valid email address", code)
        message["traits"] = {"email": email, **check_traits(raw.get("traits"), f"{field}.traits")}
    timing = {"timestamp": stamp, "sentAt": sent_at}
    timestamp = event_time(timing, received_at)
    message["timestamp"] = timestamp.isoformat().replace("+00:00", "Z")
    message["receivedAt"] = received_at.isoformat().replace("+00:00", "Z")
    return {
        "message_id": message_id,
        "type": kind,
        "user_id": "",
        "anonymous_id": anonymous_id,
        "email": email,
        "event": event,
        "payload": message,
        "timestamp": timestamp,
    }


def capture_rows(data: dict, *, received_at: datetime, user_agent: str) -> tuple[str, list[dict]]:
    """(anonymousId, rows) from a parsed request; CaptureError for anything wrong."""
    anonymous_id = data.get("anonymousId")
    if not isinstance(anonymous_id, str) or not ANONYMOUS_ID.match(anonymous_id):
        raise bad("anonymousId", "is required: 8 to 64 letters, digits, '_' or '-'", "missing_field")
    sent_at = data.get("sentAt")
    if sent_at not in (None, "") and parse_timestamp(sent_at) is None:
        raise bad("sentAt", "must be an ISO 8601 time")
    events = data.get("events")
    if not isinstance(events, list) or not events:
        raise bad("events", "is required: a list of 1 to 20 events", "missing_field")
    if len(events) > MAX_EVENTS:
        raise bad("events", f"holds {len(events)} events; at most {MAX_EVENTS} a request", "too_many_messages")
    context = {"userAgent": user_agent[:500]} if user_agent else {}
    rows, seen = [], set()
    for index, raw in enumerate(events):
        row = check_event(
            raw, index, anonymous_id=anonymous_id, sent_at=sent_at, received_at=received_at, context=context
        )
        if row["message_id"] not in seen:
            seen.add(row["message_id"])
            rows.append(row)
    return anonymous_id, rows
