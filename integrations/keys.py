"""Inbound API keys: `publickey.secretkey`, found by the public part, the secret kept hashed.

The secret is 32 random bytes, so a single SHA-256 is enough (no slow KDF needed: there is
nothing to brute-force), and it keeps key checks cheap on the hot path.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from django.db import transaction
from django.utils import timezone

from integrations.models import ApiKey, Integration

PUBLIC_ID = re.compile(r"[0-9A-Za-z_-]{1,32}")


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def api_key_create(*, integration: Integration) -> str:
    """Create a key and return it in full. This is the only time the secret exists in clear."""
    public_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    ApiKey.objects.create(integration=integration, public_id=public_id, secret_hash=_hash(secret))
    return f"{public_id}.{secret}"


@transaction.atomic
def api_key_rotate(*, integration: Integration) -> str:
    """Revoke every active key of the integration and issue a new one."""
    integration.api_keys.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
    return api_key_create(integration=integration)


def api_key_check(key: str) -> Integration | None:
    """The enabled integration a key belongs to, or None. Constant-time on the secret."""
    public_id, dot, secret = key.strip().partition(".")
    # Public ids are hex (token_hex). Anything else is refused before the query: a NUL in the
    # public part made PostgreSQL raise DataError, so a junk key answered 503 instead of 401.
    if not dot or not secret or not PUBLIC_ID.fullmatch(public_id):
        return None
    row = (
        ApiKey.objects.select_related("integration")
        .filter(public_id=public_id, revoked_at__isnull=True, integration__enabled=True)
        .first()
    )
    if row is None:
        # Spend the same hashing time as a real check so timing does not reveal public ids.
        hmac.compare_digest(_hash(secret), "0" * 64)
        return None
    if not hmac.compare_digest(_hash(secret), row.secret_hash):
        return None
    return row.integration
