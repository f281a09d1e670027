"""The capture script's site key: public (it sits in every page), one per segment_source
integration, made when the integration is created and kept in its settings as "site_key".

Each web process remembers the integrations it looked up for API_KEY_CACHE_SECONDS, as for
inbound API keys; a change to an integration in this process clears the memory at once.
"""

from __future__ import annotations

import re
import secrets
import threading
import time

from django.conf import settings

SITE_KEY = re.compile(r"^sk_[0-9A-Za-z_-]{16,40}$")
KIND = "segment_source"

_cache: dict[str, tuple[float, object | None]] = {}
_lock = threading.Lock()
CACHE_MAX_ENTRIES = 1000


def site_key_new() -> str:
    return "sk_" + secrets.token_urlsafe(18)


def site_key_ensure(sender, instance, created: bool = False, raw: bool = False, **kwargs) -> None:
    """post_save of Integration: a segment_source integration without a site key gets one."""
    if raw or instance.kind != KIND:
        return
    site_key_cache_clear()
    if (instance.settings or {}).get("site_key"):
        return
    instance.settings = {**(instance.settings or {}), "site_key": site_key_new()}
    type(instance).objects.filter(pk=instance.pk).update(settings=instance.settings)


def site_key_cache_clear(**kwargs) -> None:
    with _lock:
        _cache.clear()


def integration_for_site_key(key: str):
    """The enabled segment_source integration with this site key, or None."""
    from integrations.models import Integration

    if not isinstance(key, str) or not SITE_KEY.match(key):
        return None
    now = time.monotonic()
    hit = _cache.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    integration = Integration.objects.filter(kind=KIND, enabled=True, settings__site_key=key).first()
    ttl = settings.API_KEY_CACHE_SECONDS
    if ttl > 0:
        with _lock:
            if len(_cache) >= CACHE_MAX_ENTRIES:
                _cache.clear()
            _cache[key] = (now + ttl, integration)
    return integration
