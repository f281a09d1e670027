"""The Segment messages the outbound side sends, shaped as Retention.com's (seeds/000).

Grow: an identify whose traits are the seed's, field for field (`address_city` … `updated_at`),
and with a Group ID a group call. Reclaim: "Viewed Product Reclaim", "Viewed Category Reclaim",
"Add To Cart Reclaim" and "Checkout Started Reclaim" tracks with the seed's property names, in
both casings where the seed has both, and `EventSource: "Reclaim"`. Their input is the Segment
e-commerce events the capture script posts (Product Viewed, Product List Viewed, Product Added,
Checkout Started).

Every message has a stable messageId (`api-` and 27 characters, the seed's length) made from what
it reports, so sending it again, or queueing it again, never makes a second message in Segment.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from contacts.hashing import email_md5

APP = {"name": "switchyard", "version": "1.0"}
LIBRARY = {"name": "switchyard", "version": "1.0"}
EVENT_SOURCE = "Reclaim"

# Capture (Segment e-commerce spec) event → the Reclaim event it becomes.
RECLAIM_EVENTS = {
    "Product Viewed": "Viewed Product Reclaim",
    "Product List Viewed": "Viewed Category Reclaim",
    "Product Added": "Add To Cart Reclaim",
    "Checkout Started": "Checkout Started Reclaim",
}
ORDER_COMPLETED = "Order Completed"
CAPTURE_EVENTS = (*RECLAIM_EVENTS, ORDER_COMPLETED)
TEST_EVENT = "Switchyard Test Event"

SYMBOLS = {"": "$", "USD": "$", "CAD": "$", "AUD": "$", "NZD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}


def message_id(*parts: Any) -> str:
    """`api-` and 27 hex characters of the MD5 of `parts` (joined by \x1f): the same parts, the
    same id. MD5 because PostgreSQL computes the same id in SQL when a backfill queues contacts
    in one statement (backfill.py); it is an idempotency key, not a secret."""
    return "api-" + hashlib.md5("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:27]  # noqa: S324


def iso(moment: datetime | None) -> str | None:
    """2024-04-16T16:54:09.668Z, as the seed writes times."""
    if moment is None:
        return None
    if moment.utcoffset():
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def anonymous_id(email: str) -> str:
    """One person's anonymousId in every message: the MD5 of their lowercased email (32 hex
    characters, the seed's shape), so Segment joins their identify and their tracks."""
    return email_md5(email)


def email_domain(email: str) -> str:
    return email.rpartition("@")[2].lower()


def base(kind: str, *, mid: str, email: str, at: datetime, user_id: str | None = None) -> dict:
    message: dict[str, Any] = {"type": kind, "anonymousId": anonymous_id(email)}
    if user_id:
        message["userId"] = user_id
    message.update(
        {
            "messageId": mid,
            "timestamp": iso(at),
            "originalTimestamp": iso(at),
            "context": {"app": dict(APP), "library": dict(LIBRARY)},
            "integrations": {},
        }
    )
    return message


# --- Grow -----------------------------------------------------------------------------------
def _first(mapping: dict, *keys: str) -> Any:
    for key in keys:
        value = mapping.get(key)
        if value not in (None, ""):
            return value
    return None


def grow_traits(*, contact, visitor) -> dict:
    """The seed's Grow traits, field for field; null where nothing is known."""
    address = contact.address if isinstance(contact.address, dict) else {}
    email = contact.email or ""
    return {
        "address_city": _first(address, "city"),
        "address_line_1": _first(address, "street", "line1", "line_1", "address_line_1", "street1"),
        "address_postal": _first(address, "postal_code", "postalCode", "postal", "zip"),
        "address_state": _first(address, "state", "region"),
        "clicked_at": iso(visitor.identified_at if visitor else None) or iso(contact.created_at),
        "created_at": iso(contact.created_at),
        "email": email,
        "email_domain": email_domain(email),
        "extra_data": (visitor.extra or None) if visitor else None,
        "first_name": contact.first_name or None,
        "id": contact.pk,
        "landing_page_domain": (visitor.landing_page_domain or None) if visitor else None,
        "landing_page_url": (visitor.landing_page_url or None) if visitor else None,
        "last_name": contact.last_name or None,
        "page_title": (visitor.page_title or None) if visitor else None,
        "referrer": (visitor.referrer or None) if visitor else None,
        "updated_at": iso(contact.updated_at),
    }


def grow_identify(*, mid: str, contact, visitor, at: datetime) -> dict:
    message = base("identify", mid=mid, email=contact.email, at=at)
    message["traits"] = grow_traits(contact=contact, visitor=visitor)
    return message


def grow_group(*, mid: str, contact, group_id: str, at: datetime) -> dict:
    message = base("group", mid=mid, email=contact.email, at=at)
    message["groupId"] = group_id
    message["traits"] = {}
    return message


def grow_message_id(integration_id: int, contact_id: int) -> str:
    return message_id(integration_id, "identify", contact_id)


def group_message_id(integration_id: int, contact_id: int, group_id: str) -> str:
    return message_id(integration_id, "group", contact_id, group_id)


# --- Reclaim --------------------------------------------------------------------------------
def number(value: Any) -> int | float | None:
    """A price or amount as a JSON number (47, 78.05), from a number or a numeric string."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        decimal = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        return None
    if not decimal.is_finite():
        return None
    return int(decimal) if decimal == decimal.to_integral_value() else float(decimal)


def price_text(value: int | float | None) -> str:
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else f"{value:.2f}"


def currency_price(value: int | float | None, currency: str) -> str:
    if value is None:
        return ""
    symbol = SYMBOLS.get(currency.upper())
    return f"{symbol}{price_text(value)}" if symbol else f"{price_text(value)} {currency.upper()}"


def product_id(value: Any) -> Any:
    """As the seed: a number when the id is all digits, else the string."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 19:
        return int(value)
    return value if value not in ("",) else None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _product(p: dict, page_url: str) -> dict:
    price = number(p.get("price"))
    currency = _text(p.get("currency"))
    return {
        "brand": _text(p.get("brand")),
        "currency": currency,
        "image_url": _text(p.get("image_url") or p.get("imageUrl")),
        "name": _text(p.get("name")),
        "price": price,
        "product_id": product_id(p.get("product_id") or p.get("productId") or p.get("sku")),
        "url": _text(p.get("url") or page_url),
        "variant": _text(p.get("variant")),
        "variant_id": _text(p.get("variant_id") or p.get("variantId")),
        "quantity": p.get("quantity") if isinstance(p.get("quantity"), int) else 1,
        "sku": _text(p.get("sku")),
        "category": _text(p.get("category")),
        "compare_at_price": number(p.get("compare_at_price") or p.get("compareAtPrice")),
    }


def viewed_product(p: dict, page_url: str) -> dict:
    x = _product(p, page_url)
    return {
        "Brand": x["brand"],
        "Currency": x["currency"],
        "CurrencyPrice": currency_price(x["price"], x["currency"]),
        "EventSource": EVENT_SOURCE,
        "ImageURL": x["image_url"],
        "Name": x["name"],
        "Price": price_text(x["price"]),
        "ProductID": x["product_id"],
        "URL": x["url"],
        "Variant": x["variant"],
        "VariantID": x["variant_id"],
        "brand": x["brand"],
        "image_url": x["image_url"],
        "name": x["name"],
        "price": x["price"],
        "product_id": x["product_id"],
        "url": x["url"],
    }


def viewed_category(p: dict, page_url: str) -> dict:
    products = [item for item in (p.get("products") or []) if isinstance(item, dict)]
    first = _product(products[0], page_url) if products else _product({}, page_url)
    name = _text(p.get("category") or p.get("name") or p.get("list_id"))
    url = _text(p.get("url") or page_url)
    return {
        "EventSource": EVENT_SOURCE,
        "Name": name,
        "URL": url,
        "brand": first["brand"],
        "image_url": first["image_url"],
        "name": name,
        "price": first["price"],
        "product_id": first["product_id"],
        "url": url,
    }


def add_to_cart(p: dict, page_url: str) -> dict:
    x = _product(p, page_url)
    return {
        "Brand": x["brand"],
        "CartSource": _text(p.get("cart_source") or p.get("cartSource")),
        "CompareAtPrice": price_text(x["compare_at_price"]),
        "Currency": x["currency"],
        "CurrencyPrice": currency_price(x["price"], x["currency"]),
        "EventSource": EVENT_SOURCE,
        "ImageURL": x["image_url"],
        "Name": x["name"],
        "Price": price_text(x["price"]),
        "ProductID": x["product_id"],
        "Quantity": x["quantity"],
        "URL": x["url"],
        "Variant": x["variant"],
        "VariantID": x["variant_id"],
    }


def cart_amount(p: dict) -> int | float | None:
    for key in ("cart_amount", "amount", "value", "revenue", "total"):
        value = number(p.get(key))
        if value is not None:
            return value
    return None


def line_items(p: dict) -> list:
    """The seed's Shopify-shaped line items, from `line_items` as given or Segment's `products`."""
    given = p.get("line_items")
    if isinstance(given, list):
        return given
    currency = _text(p.get("currency")) or "USD"
    items = []
    for raw in p.get("products") or []:
        if not isinstance(raw, dict):
            continue
        x = _product(raw, "")
        items.append(
            {
                "id": product_id(raw.get("line_id") or raw.get("id")) or x["product_id"],
                "quantity": x["quantity"],
                "title": x["name"],
                "variant": {
                    "id": product_id(x["variant_id"]) or x["product_id"],
                    "image": {"src": x["image_url"]},
                    "price": {"amount": x["price"], "currency_code": x["currency"] or currency},
                    "product": {"id": x["product_id"], "title": x["name"], "type": x["category"]},
                    "sku": x["sku"],
                    "title": x["variant"] or x["name"],
                },
            }
        )
    return items


def checkout_started(p: dict, page_url: str) -> dict:
    properties = {
        "EventSource": EVENT_SOURCE,
        "cart_amount": cart_amount(p),
        "cart_id": _text(p.get("cart_id") or p.get("cartId") or p.get("checkout_id")),
        "currency": _text(p.get("currency")) or "USD",
        "line_items": line_items(p),
    }
    if p.get("test_event") is True:
        properties["test_event"] = True
    return properties


BUILDERS = {
    "Product Viewed": viewed_product,
    "Product List Viewed": viewed_category,
    "Product Added": add_to_cart,
    "Checkout Started": checkout_started,
}


def cart_of(properties: dict) -> str:
    return _text(properties.get("cart_id") or properties.get("cartId") or properties.get("checkout_id"))


def reclaim_key(event: str, properties: dict) -> str:
    """What "at most once a day" counts per visitor: the product, the category or the cart."""
    if event == "Product List Viewed":
        return "category:" + _text(properties.get("category") or properties.get("list_id") or properties.get("name"))
    if event == "Checkout Started":
        return "cart:" + cart_of(properties)
    product = _text(properties.get("product_id") or properties.get("productId") or properties.get("sku"))
    if event == "Product Added":
        return f"cart:{cart_of(properties)}:product:{product}"
    return "product:" + product


def reclaim_message_id(integration_id: int, contact_id: int, event: str, properties: dict, at: datetime) -> str:
    return message_id(integration_id, "reclaim", contact_id, event, reclaim_key(event, properties), f"{at:%Y-%m-%d}")


def reclaim_track(*, mid: str, event: str, properties: dict, page_url: str, email: str, at: datetime) -> dict:
    message = base("track", mid=mid, email=email, at=at)
    message["email"] = email
    message["event"] = RECLAIM_EVENTS[event]
    message["properties"] = BUILDERS[event](properties, page_url)
    return message


# --- The other apps' events, and the test event -----------------------------------------------
def app_track(*, mid: str, event: str, properties: dict, email: str, user_id: str | None, at: datetime) -> dict:
    message = base("track", mid=mid, email=email, at=at, user_id=user_id)
    message["email"] = email
    message["event"] = event
    message["properties"] = dict(properties)
    return message


def test_track(*, mid: str, at: datetime) -> dict:
    message = base("track", mid=mid, email="test@switchyard.invalid", at=at)
    message["event"] = TEST_EVENT
    message["properties"] = {"EventSource": "Switchyard", "test_event": True}
    return message


def page_domain(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""
