"""The capture script and its endpoint: public, keyed by the integration's site key.

`GET /capture.js` serves the script. `POST /capture/events?key=SITE_KEY` takes its events:
only from the integration's `allowed_origins` (the browser's Origin header; CORS answers only
those), rate-limited per IP address and per visitor, checked in full (a 4xx names the field,
and nothing of a refused request is stored), and stored in the inbox before the answer, in the
same statement as Segment's calls (integrations.inbound.store), for the drain to apply.
"""

from __future__ import annotations

import logging
import zlib
from functools import cache
from pathlib import Path

from django.db import DatabaseError, transaction
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from integrations.capture.keys import integration_for_site_key
from integrations.capture.ratelimit import over_limit
from integrations.capture.validation import MAX_BODY_BYTES, CaptureError, capture_rows, parse_body
from integrations.inbound.store import drain_soon, record_rejection, request_store

log = logging.getLogger(__name__)

SCRIPT = Path(__file__).resolve().parent.parent / "static" / "capture" / "capture.js"


@cache
def script_bytes() -> bytes:
    return SCRIPT.read_bytes()


@require_http_methods(["GET", "HEAD"])
def capture_script(request):
    response = HttpResponse(script_bytes(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def error(status: int, code: str, message: str, headers: dict | None = None) -> JsonResponse:
    response = JsonResponse({"success": False, "code": code, "message": message}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def allowed_origins(integration) -> set[str]:
    return {o for o in (integration.behaviour().option("allowed_origins") or "").split(",") if o}


def origin_allowed(integration, origin: str) -> bool:
    return bool(origin) and origin.lower() in allowed_origins(integration)


def read_body(request) -> bytes:
    body = request.body
    encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        try:
            body = zlib.decompressobj(wbits=47 if encoding != "deflate" else 15).decompress(body, MAX_BODY_BYTES + 1)
        except zlib.error:
            raise CaptureError(400, "invalid_encoding", f"the body is not valid {encoding}") from None
    elif encoding not in ("", "identity"):
        raise CaptureError(415, "unsupported_encoding", f"Content-Encoding {encoding!r} is not supported")
    return body


@csrf_exempt
@require_http_methods(["POST", "OPTIONS"])
def capture_events(request):
    if request.method == "OPTIONS":
        # A preflight is answered by the CORS middleware for allowed origins; anything else is
        # a plain OPTIONS.
        response = HttpResponse(status=204)
        response["Allow"] = "POST, OPTIONS"
        return response
    integration = None
    body = b""
    try:
        if len(request.body) > MAX_BODY_BYTES * 4:
            raise CaptureError(413, "too_large", f"the request body is over {MAX_BODY_BYTES // 1024} KB")
        body = read_body(request)
        data = parse_body(body)
        key = request.GET.get("key") or data.get("key")
        integration = integration_for_site_key(key) if isinstance(key, str) else None
        if integration is None:
            raise CaptureError(401, "unauthorized", "key: the site key is unknown, or its integration is removed")
        origin = request.headers.get("Origin", "")
        if not origin_allowed(integration, origin):
            raise CaptureError(
                403,
                "origin_not_allowed",
                f"Origin {origin[:100]!r} is not in this integration's allowed_origins"
                if origin
                else "Origin is required: only the integration's allowed_origins may post",
            )
        received_at = timezone.now()
        anonymous_id, rows = capture_rows(
            data, received_at=received_at, user_agent=request.headers.get("User-Agent", "")
        )
        limit = integration.behaviour().option("capture_rate_limit")
        keys = [f"ip:{integration.pk}:{request.META.get('REMOTE_ADDR', '')}", f"anon:{integration.pk}:{anonymous_id}"]
        wait = over_limit(keys=keys, limit=limit, now=received_at)
        if wait is not None:
            return error(
                429,
                "rate_limited",
                f"more than {limit} capture requests a minute from this address or visitor",
                {"Retry-After": str(wait)},
            )
        with transaction.atomic():
            inserted = request_store(integration=integration, rows=rows, received_at=received_at)
            if inserted:
                transaction.on_commit(drain_soon)
    except CaptureError as refused:
        record_rejection(
            integration=integration,
            path=request.path,
            status=refused.status,
            problems=[
                {"code": refused.code, "message": refused.message, "body": body[:65536].decode("utf-8", "replace")}
            ],
            remote_addr=request.META.get("REMOTE_ADDR") or None,
        )
        return error(refused.status, refused.code, refused.message)
    except DatabaseError:
        log.exception("captured events could not be stored")
        return error(503, "unavailable", "the events could not be stored; retry later")
    if inserted is None:
        return error(429, "rate_limited", "this integration's daily cap is spent", {"Retry-After": "3600"})
    return JsonResponse({"success": True, "accepted": len(inserted), "duplicates": len(rows) - len(inserted)})


def cors_enabled(sender, request, **kwargs) -> bool:
    """corsheaders.signals.check_request_enabled: the capture endpoint answers cross-origin only
    to the origins its integration allows (the site key is in the query string, so a preflight,
    which has no body, is judged too)."""
    if request.path_info != "/capture/events":
        return False
    integration = integration_for_site_key(request.GET.get("key", ""))
    return integration is not None and origin_allowed(integration, request.headers.get("Origin", ""))
