"""Referral codes, referral links and click ids.

A code is what an affiliate shares: short, upper case, without the letters and digits people
confuse (0/O, 1/I/L), so it can be read out or typed from a flyer. Staff may choose their own
(letters, digits, - and _). Codes are matched whatever their case.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
CODE_RE = re.compile(r"^[A-Z0-9_-]{3,32}$")


def code_new() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def code_clean(value: object) -> str | None:
    """The code as stored (upper case), or None when it cannot be a referral code."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    code = str(value).strip().upper()
    return code if CODE_RE.match(code) else None


def referral_link(code: str) -> str:
    return f"{settings.SITE_URL}/r/{code}"


def click_id_new() -> str:
    return secrets.token_urlsafe(12)


def landing_url_with(url: str, **params: str) -> str:
    """The landing URL with `params` added to its query (replacing any of the same name)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))
