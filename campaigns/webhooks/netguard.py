"""Server-side request forgery guard for the URLs staff give us (webhooks, Slack).

A URL whose host resolves to a loopback, private, link-local, multicast, reserved or otherwise
non-public address (127.0.0.1, 10.0.0.0/8, 169.254.169.254 the cloud metadata service, ::1,
…) is refused: staff could otherwise make the server call its own admin or its cloud's secrets.
Checked when a URL is saved and again before every call, since DNS answers change.
WEBHOOKS_ALLOW_PRIVATE_URLS lets them through (on by default with DEBUG, for local work and tests).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


class UnsafeURL(ValueError):
    """Why a URL may not be called."""


def private_allowed() -> bool:
    return bool(getattr(settings, "WEBHOOKS_ALLOW_PRIVATE_URLS", settings.DEBUG))


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str, *, resolve: bool = True) -> None:
    """Raise UnsafeURL unless `url` is http(s) to a host whose every address is public."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UnsafeURL(f"not a valid URL: {error}") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL("only http and https URLs can be called")
    host = parts.hostname
    if not host:
        raise UnsafeURL("the URL has no host")
    if parts.username or parts.password:
        raise UnsafeURL("the URL cannot carry a user name or password")
    if private_allowed() or not resolve:
        return
    try:
        infos = socket.getaddrinfo(host, port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise UnsafeURL(f"the host {host!r} does not resolve ({error})") from None
    for info in infos:
        address = info[4][0]
        if not _public(address):
            raise UnsafeURL(
                f"the host {host!r} resolves to {address}, a private or local address; such URLs are refused "
                "(WEBHOOKS_ALLOW_PRIVATE_URLS allows them)"
            )
