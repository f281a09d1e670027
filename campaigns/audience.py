"""Audience conditions (CONTRACT.md "Audience conditions"), shared by loops and survey campaigns.

An audience is `{"match": "all" | "any", "conditions": [{"property", "operator", "value"}]}`
with at most 5 conditions; empty or absent matches everyone. `property` is a custom property
name (as senders spell it) or `email`, `first_name`, `last_name`.

How values compare, so staff can predict a match:
- Text compares case-insensitively (`plan is Pro` matches "pro"); `contains` is a substring.
- A collection (a list) `is` / `contains` a value when one of its items equals it
  (case-insensitively); `is_not` when none does.
- `gt` / `lt` compare numbers (a number stored as text counts); anything else does not match.
- `before` / `after` compare dates: the value is an ISO 8601 date or datetime. With a date
  only, the contact's value is compared by its UTC day (`after 2024-05-01` is from May 2nd).
- A contact without the property matches only `is_not` and `is_not_set`. Empty text and an
  empty collection count as not set.

`audience_clean` validates and normalises what staff send (the API and the admin), naming
the bad condition; `Audience` evaluates in memory, on contacts already loaded (the loops
receiver evaluates a whole drained chunk with no query per contact).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from rest_framework import serializers

from contacts.models import PROPERTY_NAME_RE

MAX_CONDITIONS = 5
MATCHES = ("all", "any")
OPERATORS = ("is", "is_not", "contains", "gt", "lt", "before", "after", "is_set", "is_not_set")
STANDARD_PROPERTIES = ("email", "first_name", "last_name")
NO_VALUE = ("is_set", "is_not_set")
_NAME = re.compile(PROPERTY_NAME_RE)


class AudienceError(ValueError):
    """What is wrong with an audience, naming the condition (1-based, as staff count)."""


# --- validation -------------------------------------------------------------------------------
def audience_clean(value: Any) -> dict:
    """The normalised audience, or AudienceError saying which condition is wrong and why.

    Empty (None, {}, no conditions) becomes {}: everyone.
    """
    if value in (None, "", {}):
        return {}
    if not isinstance(value, dict):
        raise AudienceError('an audience is an object: {"match": "all" | "any", "conditions": [...]}')
    unknown = sorted(set(value) - {"match", "conditions"})
    if unknown:
        raise AudienceError(f"unknown key(s) {', '.join(unknown)}; an audience has only match and conditions")
    match = value.get("match", "all")
    if match not in MATCHES:
        raise AudienceError(f"match must be 'all' or 'any', not {match!r}")
    conditions = value.get("conditions") or []
    if not isinstance(conditions, list):
        raise AudienceError("conditions must be a list")
    if len(conditions) > MAX_CONDITIONS:
        raise AudienceError(f"at most {MAX_CONDITIONS} conditions; got {len(conditions)}")
    if not conditions:
        return {}
    return {"match": match, "conditions": [_clean_condition(n, c) for n, c in enumerate(conditions, start=1)]}


def _clean_condition(number: int, condition: Any) -> dict:
    where = f"condition {number}"
    if not isinstance(condition, dict):
        raise AudienceError(f'{where}: must be an object {{"property", "operator", "value"}}')
    unknown = sorted(set(condition) - {"property", "operator", "value"})
    if unknown:
        raise AudienceError(f"{where}: unknown key(s) {', '.join(unknown)}")
    prop = condition.get("property")
    if not isinstance(prop, str) or not prop.strip():
        raise AudienceError(f"{where}: property is required (a custom property name, or email, first_name, last_name)")
    prop = prop.strip()
    if prop not in STANDARD_PROPERTIES and not (_NAME.match(prop) and len(prop) <= 100):
        raise AudienceError(
            f"{where}: property {prop!r} is not a property name (letters, digits and underscores, "
            "starting with a letter; or email, first_name, last_name)"
        )
    where = f"condition {number} ({prop})"
    operator = condition.get("operator")
    if operator not in OPERATORS:
        raise AudienceError(f"{where}: operator {operator!r} is not one of {', '.join(OPERATORS)}")
    value = condition.get("value")
    if operator in NO_VALUE:
        value = None
    elif operator in ("gt", "lt"):
        number_value = _number(value)
        if number_value is None:
            raise AudienceError(f"{where}: {operator} needs a number as its value, not {value!r}")
        value = number_value
    elif operator in ("before", "after"):
        if _when(value) is None:
            raise AudienceError(f"{where}: {operator} needs an ISO 8601 date (2024-05-01) or datetime, not {value!r}")
        value = value.strip()
    else:
        if value is None or isinstance(value, dict | list) or (isinstance(value, str) and not value.strip()):
            raise AudienceError(f"{where}: {operator} needs a value (text, a number or true/false)")
        if isinstance(value, float) and not math.isfinite(value):
            raise AudienceError(f"{where}: {value!r} is not a finite number")
        if isinstance(value, str) and "\x00" in value:
            raise AudienceError(f"{where}: the value cannot hold a NUL character")
    return {"property": prop, "operator": operator, "value": value}


class AudienceField(serializers.JSONField):
    """The API's `audience`: validated and normalised by audience_clean, errors naming the condition."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "help_text",
            '{"match": "all" | "any", "conditions": [{"property", "operator", "value"}]}, at most '
            f"{MAX_CONDITIONS} conditions; empty matches everyone.",
        )
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        try:
            return audience_clean(super().to_internal_value(data))
        except AudienceError as error:
            raise serializers.ValidationError(str(error)) from None


# --- evaluation -------------------------------------------------------------------------------
def _number(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip().replace(",", ""))
        except ValueError:
            return None
        if not math.isfinite(number):
            return None
        return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
    return None


def _when(value: Any) -> tuple[datetime, bool] | None:
    """(a UTC datetime, whether it was a date only), or None for what is not a date."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC), False
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC), True
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC), True
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC), False


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().casefold()


def _equals(actual: Any, expected: Any) -> bool:
    if isinstance(actual, list):
        return any(_equals(item, expected) for item in actual)
    if isinstance(actual, bool) or isinstance(expected, bool):
        return _text(actual) == _text(expected)
    left, right = _number(actual), _number(expected)
    if left is not None and right is not None and not isinstance(actual, str):
        return left == right
    return _text(actual) == _text(expected)


def _is_set(value: Any) -> bool:
    return value is not None and value != "" and value != []


@dataclass(frozen=True)
class Condition:
    property: str
    operator: str
    value: Any

    def actual(self, contact) -> Any:
        if self.property in STANDARD_PROPERTIES:
            return getattr(contact, self.property, None) or None
        return (getattr(contact, "properties", None) or {}).get(self.property)

    def matches(self, contact) -> bool:
        actual = self.actual(contact)
        operator = self.operator
        if operator == "is_set":
            return _is_set(actual)
        if operator == "is_not_set":
            return not _is_set(actual)
        if operator == "is_not":
            return not (_is_set(actual) and _equals(actual, self.value))
        if not _is_set(actual):
            return False
        if operator == "is":
            return _equals(actual, self.value)
        if operator == "contains":
            if isinstance(actual, list):
                return _equals(actual, self.value)
            return _text(self.value) in _text(actual)
        if operator in ("gt", "lt"):
            number, limit = _number(actual), _number(self.value)
            if number is None or limit is None:
                return False
            return number > limit if operator == "gt" else number < limit
        if operator in ("before", "after"):
            when, limit = _when(actual), _when(self.value)
            if when is None or limit is None:
                return False
            left, right = (when[0].date(), limit[0].date()) if limit[1] else (when[0], limit[0])
            return left < right if operator == "before" else left > right
        return False

    def describe(self) -> str:
        if self.operator in NO_VALUE:
            return f"{self.property} {self.operator.replace('_', ' ')}"
        return f"{self.property} {self.operator.replace('_', ' ')} {self.value!r}"


class Audience:
    """A cleaned audience, ready to evaluate many contacts in memory."""

    def __init__(self, audience: dict | None) -> None:
        audience = audience or {}
        self.match_all = audience.get("match", "all") != "any"
        self.conditions = [
            Condition(c.get("property", ""), c.get("operator", ""), c.get("value"))
            for c in audience.get("conditions") or []
            if isinstance(c, dict)
        ]

    def __bool__(self) -> bool:
        return bool(self.conditions)

    def matches(self, contact) -> bool:
        return not self.why_not(contact)

    def why_not(self, contact) -> str:
        """Empty when the contact is in the audience; else which condition(s) it fails."""
        if not self.conditions:
            return ""
        failed = [(n, c) for n, c in enumerate(self.conditions, start=1) if not c.matches(contact)]
        if self.match_all:
            if not failed:
                return ""
            number, condition = failed[0]
            return f"audience: fails condition {number} ({condition.describe()})"
        if len(failed) < len(self.conditions):
            return ""
        return "audience: matches none of its conditions"
