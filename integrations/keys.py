"""Inbound API keys: `publickey.secretkey`, found by the public part, the secret kept hashed.

The secret is 32 random bytes, so a single SHA-256 is enough (no slow KDF needed: there is
nothing to brute-force), and it keeps key checks cheap on the hot path.

Each web process remembers the keys it has looked up for `API_KEY_CACHE_SECONDS`: the lookup
was the costliest part of a single inbound call (an ORM query compiled and run per request).
A change made in this process (rotation, disabling, a setting) clears the memory at once;
other processes see it when their entry expires.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time

from django.conf import settings
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
    transaction.on_commit(api_key_cache_clear)
    return api_key_create(integration=integration)


# public id → (expires at, secret hash, integration). Bounded: a flood of distinct public ids
# (only real ones are remembered) cannot grow it without limit.
_cache: dict[str, tuple[float, str, Integration]] = {}
_cache_lock = threading.Lock()
CACHE_MAX_ENTRIES = 10_000


def api_key_cache_clear(**_signal_kwargs) -> None:
    """Forget every remembered key: called after anything that changes who may send."""
    with _cache_lock:
        _cache.clear()


def _lookup(public_id: str) -> tuple[str, Integration] | None:
    ttl = settings.API_KEY_CACHE_SECONDS
    now = time.monotonic()
    hit = _cache.get(public_id)
    if hit is not None and hit[0] > now:
        return hit[1], hit[2]
    row = (
        ApiKey.objects.select_related("integration")
        .filter(public_id=public_id, revoked_at__isnull=True, integration__enabled=True)
        .first()
    )
    if row is None:
        return None
    if ttl > 0:
        with _cache_lock:
            if len(_cache) >= CACHE_MAX_ENTRIES:
                _cache.clear()
            _cache[public_id] = (now + ttl, row.secret_hash, row.integration)
    return row.secret_hash, row.integration


def api_key_check(key: str) -> Integration | None:
    """The enabled integration a key belongs to, or None. Constant-time on the secret."""
    public_id, dot, secret = key.strip().partition(".")
    # Public ids are hex (token_hex). Anything else is refused before the query: a NUL in the
    # public part made PostgreSQL raise DataError, so a junk key answered 503 instead of 401.
    if not dot or not secret or not PUBLIC_ID.fullmatch(public_id):
        return None
    found = _lookup(public_id)
    if found is None:
        # Spend the same hashing time as a real check so timing does not reveal public ids.
        hmac.compare_digest(_hash(secret), "0" * 64)
        return None
    secret_hash, integration = found
    if not hmac.compare_digest(_hash(secret), secret_hash):
        return None
    return integration
