"""Typed custom properties: name folding, type inference and coercion.

Values are stored JSON-native: text as str, number as int/float, boolean as bool, date as an
ISO 8601 string (date or datetime), collection as a list of str.
"""

from __future__ import annotations

import functools
import math
import re
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from contacts.models import PROPERTY_NAME_RE, PropertyType

_NAME = re.compile(PROPERTY_NAME_RE)
_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
_NOT_NAME = re.compile(r"[^A-Za-z0-9_]+")
_UNDERSCORES = re.compile(r"_+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[\s\-.]+")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
MAX_TEXT = 10_000


class PropertyError(ValueError):
    pass


def property_name(key: str) -> str | None:
    """The property name for a trait key, as the sender spelled it: `favoriteColor` stays
    `favoriteColor` (Loops matches names exactly, and Segment's reserved traits are camelCase).

    Names hold letters, digits and underscores and start with a letter: other characters
    ('Signup Date', 'plan-tier') become underscores. None if nothing usable is left.
    """
    if not isinstance(key, str) or not key or len(key) > 100:
        return None
    return _as_sent(key)


@functools.lru_cache(maxsize=8192)
def _as_sent(key: str) -> str | None:
    # The same few trait names arrive millions of times: clean each once per process.
    name = _UNDERSCORES.sub("_", _NOT_NAME.sub("_", key.strip())).strip("_")
    return name if _NAME.match(name) else None


def snake_name(key: str) -> str | None:
    """favoriteColor → favorite_color, 'Signup Date' → signup_date; None if it cannot be a name.

    Used to recognise standard fields whatever their casing (firstName, first_name), and by
    partners whose own rule is lowercase names (Retently: no spaces, no capitals).
    """
    if not isinstance(key, str) or not key or len(key) > 100:
        return None
    return _snake(key)


@functools.lru_cache(maxsize=8192)
def _snake(key: str) -> str | None:
    name = _SEPARATORS.sub("_", _CAMEL.sub("_", key.strip())).lower().strip("_")
    name = _UNDERSCORES.sub("_", name)
    return name if _SNAKE.match(name) else None


def parse_date(value: Any) -> str:
    """MM/DD/YYYY, ISO 8601 or RFC 2822 (or epoch seconds) → ISO string."""
    if isinstance(value, bool):
        raise PropertyError(f"{value!r} is not a date")
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value / 1000 if abs(value) > 1e11 else value, tz=UTC).isoformat()
        except (OverflowError, OSError, ValueError):
            raise PropertyError(f"{value!r} is not a date") from None
    if not isinstance(value, str) or not value.strip():
        raise PropertyError(f"{value!r} is not a date")
    text = value.strip()
    # ISO first: it is what most senders use, and a failed strptime (an exception) costs more.
    if _ISO_DATE.match(text):
        try:
            if len(text) == 10:
                return date.fromisoformat(text).isoformat()
            parsed = datetime.fromisoformat(text)
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat()
        except ValueError:
            pass
    for fmt in ("%m/%d/%Y", "%m/%d/%y"):
        try:
            return datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            pass
    try:
        return parsedate_to_datetime(text).isoformat()
    except (TypeError, ValueError, IndexError):
        pass
    raise PropertyError(f"{value!r} is not a date (use MM/DD/YYYY, ISO 8601 or RFC 2822)")


def coerce(value: Any, type_: str) -> Any:
    """The stored form of `value` for a property of `type_`, or PropertyError saying why not."""
    if type_ == PropertyType.TEXT:
        if isinstance(value, dict | list):
            raise PropertyError(f"{type(value).__name__} is not text")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if len(text) > MAX_TEXT:
            raise PropertyError(f"text is longer than {MAX_TEXT} characters")
        return text
    if type_ == PropertyType.NUMBER:
        if isinstance(value, bool):
            raise PropertyError(f"{value!r} is not a number")
        if isinstance(value, int | float):
            number = value
        elif isinstance(value, str):
            try:
                number = float(value.strip().replace(",", "")) if value.strip() else None
            except ValueError:
                number = None
            if number is None:
                raise PropertyError(f"{value!r} is not a number")
            if number.is_integer() and "." not in value and "e" not in value.lower():
                number = int(number)
        else:
            raise PropertyError(f"{type(value).__name__} is not a number")
        if isinstance(number, float) and not math.isfinite(number):
            raise PropertyError(f"{value!r} is not a finite number")
        if isinstance(number, int) and abs(number) > 2**63:
            raise PropertyError(f"{value!r} is too large")
        return number
    if type_ == PropertyType.BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.strip().lower() in ("true", "yes", "1")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise PropertyError(f"{value!r} is not true or false")
    if type_ == PropertyType.DATE:
        return parse_date(value)
    if type_ == PropertyType.COLLECTION:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        if isinstance(value, list) and all(isinstance(i, str | int | float) and not isinstance(i, bool) for i in value):
            return [str(i) for i in value]
        raise PropertyError(f"{value!r} is not a collection (a list, or 'a, b, c')")
    raise PropertyError(f"unknown property type {type_!r}")


def infer_type(value: Any) -> str | None:
    """The type a first-seen value suggests; None for values no type can hold (objects)."""
    if isinstance(value, bool):
        return PropertyType.BOOLEAN
    if isinstance(value, int | float):
        return PropertyType.NUMBER
    if isinstance(value, list):
        return PropertyType.COLLECTION
    if isinstance(value, dict):
        return None
    if isinstance(value, str) and _ISO_DATE.match(value):
        try:
            parse_date(value)
            return PropertyType.DATE
        except PropertyError:
            pass
    return PropertyType.TEXT
