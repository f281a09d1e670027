"""Ids typed by people (admin search boxes, query strings)."""

from __future__ import annotations

BIGINT_MAX = 2**63 - 1


def parse_pk(text: str) -> int | None:
    """The primary key `text` names, or None. str.isdigit() alone accepts '²' and '١', which
    int() refuses, and an out-of-range number makes PostgreSQL raise: both were 500s."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value <= BIGINT_MAX else None
