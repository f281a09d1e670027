"""The one way an email becomes a lookup key: MD5 of the trimmed, lowercased address."""

from __future__ import annotations

import hashlib


def email_md5(email: str) -> str:
    return hashlib.md5(email.strip().lower().encode()).hexdigest()  # noqa: S324 - a lookup key, not security
