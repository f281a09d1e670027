"""Segment Tracking API endpoints: authenticate, check, store, answer. No domain work here."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import zlib
from contextlib import nullcontext
from datetime import timedelta

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, transaction
from django.http import HttpResponse, JsonResponse, UnreadablePostError
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.exceptions import APIException
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from integrations.inbound import schema
from integrations.inbound.spec import SpecError, encoded_size, normalize
from integrations.inbound.store import drain_soon, record_rejection, rejection_rows, request_store
from integrations.keys import api_key_check
from integrations.models import Integration, RejectedMessage

log = logging.getLogger(__name__)


class Refused(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict | None = None, *, counted: bool = False
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}
        # True when the request is already in today's usage (refused by the daily cap).
        self.counted = counted


def error_response(status: int, code: str, message: str, headers: dict | None = None) -> JsonResponse:
    response = JsonResponse({"success": False, "code": code, "message": message}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def header_key(request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    scheme, _, credentials = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            # ValueError too: b64decode raises a plain ValueError (not binascii.Error) for a
            # non-ASCII header value, which used to escape as a 500.
            raise Refused(401, "unauthorized", "Authorization: Basic credentials are not valid base64") from None
        return decoded.partition(":")[0]
    if scheme == "bearer":
        return credentials.strip()
    raise Refused(401, "unauthorized", "Authorization must be Basic (key as username) or Bearer")


def size_text(limit: int) -> str:
    return (
        f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 and not limit % (1024 * 1024) else f"{limit // 1024} KB"
    )


def read_body(request, limit: int) -> bytes:
    try:
        body = request.body
    except (RequestDataTooBig, UnreadablePostError):  # over Django's own cap, or the client went away
        raise Refused(413, "too_large", f"the request body is over {size_text(limit)}") from None
    encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        # Cap what we inflate: a small bomb must not become a large allocation.
        inflater = zlib.decompressobj(wbits=47 if encoding != "deflate" else 15)
        try:
            body = inflater.decompress(body, limit + 1)
        except zlib.error:
            raise Refused(400, "invalid_encoding", f"the body is not valid {encoding}") from None
    elif encoding not in ("", "identity"):
        raise Refused(415, "unsupported_encoding", f"Content-Encoding {encoding!r} is not supported; use gzip")
    if len(body) > limit:
        raise Refused(413, "too_large", f"the request body is over {size_text(limit)}")
    return body


def parse_json(body: bytes):
    if not body.strip():
        raise Refused(400, "invalid_json", "the body is empty; send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Refused(400, "invalid_json", f"the body is not valid JSON: {exc}") from None


def check_signature(integration: Integration, request, body: bytes, data) -> None:
    secret = integration.shared_secret
    if not secret:
        return
    given = request.META.get("HTTP_X_SIGNATURE", "").strip().lower()
    if not given:
        raise Refused(401, "invalid_signature", "X-Signature is required by this integration")
    # Compare bytes: hmac.compare_digest raises TypeError on a non-ASCII str, which made a
    # header like "X-Signature: é" answer 500.
    given_bytes = given.encode("utf-8", "replace")
    candidates = [body]
    if isinstance(data, list) and data:
        # Webhooks (Actions) batches are signed over their first element. One nested too deeply
        # for orjson to write cannot be what was signed (it raised TypeError: a 500).
        try:
            candidates.append(orjson.dumps(data[0]))
        except TypeError:
            pass
    for candidate in candidates:
        expected = hmac.new(secret.encode(), candidate, hashlib.sha1).hexdigest()
        if hmac.compare_digest(expected.encode(), given_bytes):
            return
    raise Refused(401, "invalid_signature", "X-Signature does not match the body (HMAC-SHA1 hex digest)")


def seconds_to_midnight() -> int:
    now = timezone.now()
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((midnight - now).total_seconds()))


def client_addr(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


class IgnoreAccept(BaseContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type

    def select_parser(self, request, parsers):  # pragma: no cover - the views read the body raw
        return None


class SegmentEndpoint(APIView):
    """One Segment Tracking API endpoint. `mode` is single, batch or destination."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes: list = []
    mode = "single"
    path_type: str | None = None

    # The answer is always JSON whatever Accept says: no 406 from content negotiation.
    content_negotiation_class = IgnoreAccept

    def handle_exception(self, exc):
        """DRF's own refusals (405 for GET, a malformed request) in the contract's error shape."""
        if isinstance(exc, APIException):
            detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
            code = exc.default_code if isinstance(exc.default_code, str) else "invalid_request"
            response = error_response(exc.status_code, code, str(detail))
            if isinstance(exc, exceptions.MethodNotAllowed):
                response["Allow"] = "POST, OPTIONS"
            return response
        return super().handle_exception(exc)

    # Cross-origin answers (analytics.js on a customer's site) are CorsMiddleware's: it answers
    # the browser's preflight itself and marks every answer to a page readable.

    def options(self, request, *args, **kwargs):
        """A plain OPTIONS (not a browser's preflight): which methods the endpoint takes."""
        response = HttpResponse(status=204)
        response["Allow"] = "POST, OPTIONS"
        return response

    def post(self, request, *args, **kwargs):
        django_request = request._request
        self.integration = None
        self.may_hold_nul = False
        try:
            return self.receive(django_request)
        except Refused as refused:
            record_rejection(
                integration=self.integration,
                # Requests refused by the daily cap are only counted: a client hammering past
                # its cap must not fill the table.
                keep_row=not refused.counted,
                count_usage=not refused.counted,
                path=django_request.path,
                status=refused.status,
                problems=[{"code": refused.code, "message": refused.message, "body": self._body_text(django_request)}],
                remote_addr=client_addr(django_request),
            )
            return error_response(refused.status, refused.code, refused.message, refused.headers)
        except DatabaseError:
            log.exception("inbound message could not be stored")
            return error_response(503, "unavailable", "the message could not be stored; retry later")

    @staticmethod
    def _body_text(request) -> str:
        try:
            return request.body[:65536].decode("utf-8", "replace")
        except Exception:  # noqa: BLE001
            return ""

    def receive(self, request):
        limit = {
            "single": settings.SEGMENT_MAX_MESSAGE_BYTES,
            "batch": settings.SEGMENT_MAX_BATCH_BYTES,
            # An array of up to SEGMENT_MAX_BATCH_MESSAGES messages, each still held to 32 KB; a
            # single message is held to 32 KB in items().
            "destination": settings.SEGMENT_MAX_DESTINATION_BYTES,
        }[self.mode]
        key = header_key(request)
        integration = None
        if key is not None:
            integration = api_key_check(key)
            if integration is None:
                raise Refused(401, "unauthorized", "the API key is unknown, revoked or its integration is disabled")
            self.integration = integration
        body = read_body(request, limit)
        data = parse_json(body)
        if integration is None:
            write_key = data.get("writeKey") if isinstance(data, dict) else None
            if not isinstance(write_key, str) or not write_key:
                raise Refused(
                    401, "unauthorized", "send the API key as Basic auth username, a Bearer token or writeKey"
                )
            integration = api_key_check(write_key)
            if integration is None:
                raise Refused(401, "unauthorized", "the writeKey is unknown, revoked or its integration is disabled")
        self.integration = integration
        check_signature(integration, request, body, data)
        items, batch_shape = self.items(data, body_size=len(body))
        # JSON can only carry NUL as the escape \u0000, so a body without it needs no walk.
        self.may_hold_nul = b"\\u0000" in body
        return self.store(request, integration, items, batch_shape)

    def items(self, data, *, body_size: int = 0) -> tuple[list, bool]:
        """The messages in the request, and whether the answer is batch-shaped."""
        if self.mode == "single":
            if not isinstance(data, dict):
                raise Refused(400, "invalid_body", "the body must be a JSON object (one message)")
            return [data], False
        if self.mode == "destination" and isinstance(data, dict):
            # One message: the 32 KB message limit applies, not the array limit the body was
            # read with (a 100 KB single message used to be accepted here).
            if body_size > settings.SEGMENT_MAX_MESSAGE_BYTES:
                raise Refused(413, "too_large", f"the message is over {settings.SEGMENT_MAX_MESSAGE_BYTES // 1024} KB")
            return [data], False
        if self.mode == "destination" and isinstance(data, list):
            batch = data
        elif isinstance(data, dict):
            batch = data.get("batch")
            if not isinstance(batch, list):
                raise Refused(400, "missing_field", "batch is required and must be an array of messages")
            shared = {k: data[k] for k in ("context", "integrations", "sentAt") if k in data}
            if shared:
                batch = [{**shared, **item} if isinstance(item, dict) else item for item in batch]
        else:
            raise Refused(400, "invalid_body", "the body must be a JSON object with a batch array")
        if len(batch) > settings.SEGMENT_MAX_BATCH_MESSAGES:
            raise Refused(
                400,
                "too_many_messages",
                f"batch holds {len(batch)} messages; the limit is {settings.SEGMENT_MAX_BATCH_MESSAGES}",
            )
        return batch, True

    def store(self, request, integration: Integration, items: list, batch_shape: bool) -> JsonResponse:
        received_at = timezone.now()
        rows, problems, seen = [], [], set()
        duplicates_in_request = 0
        for index, item in enumerate(items):
            try:
                size = encoded_size(item)
                if batch_shape and size > settings.SEGMENT_MAX_MESSAGE_BYTES:
                    raise SpecError(
                        "too_large", f"message is over {settings.SEGMENT_MAX_MESSAGE_BYTES // 1024} KB", 413
                    )
                row = normalize(item, path_type=self.path_type, received_at=received_at, check_nul=self.may_hold_nul)
            except SpecError as error:
                if not batch_shape:
                    raise Refused(error.status, error.code, error.message) from None
                problems.append(
                    {
                        "index": index,
                        "code": error.code,
                        "message": error.message,
                        "body": _dump(item),
                        "status": error.status,
                    }
                )
                continue
            if row["message_id"] in seen:
                duplicates_in_request += 1
                continue
            seen.add(row["message_id"])
            rows.append(row)

        # Batch items refused by the spec are kept for staff in the same transaction as the
        # stored ones; a clean request needs no transaction of its own (one statement).
        with transaction.atomic() if problems else nullcontext():
            inserted = request_store(
                integration=integration, rows=rows, received_at=received_at, rejected=len(problems)
            )
            if inserted is not None and problems:
                RejectedMessage.objects.bulk_create(
                    rejection_rows(
                        integration=integration,
                        path=request.path,
                        status=400,
                        problems=problems,
                        remote_addr=client_addr(request),
                    )
                )
            if inserted:
                transaction.on_commit(drain_soon)
        if inserted is None:
            raise Refused(
                429,
                "rate_limited",
                f"this integration's daily cap of {integration.daily_cap} requests is spent; it resets at 00:00 UTC",
                # analytics.js waits for X-RateLimit-Reset (seconds); other clients read Retry-After.
                {"Retry-After": str(wait := seconds_to_midnight()), "X-RateLimit-Reset": str(wait)},
                counted=True,
            )

        if not batch_shape:
            return JsonResponse({"success": True})
        return JsonResponse(
            {
                "success": True,
                "accepted": len(inserted),
                "duplicates": len(rows) - len(inserted) + duplicates_in_request,
                "rejected": [{k: p[k] for k in ("index", "code", "message")} for p in problems],
            }
        )


def _dump(item) -> str:
    try:
        return orjson.dumps(item).decode()[:65536]
    except TypeError:
        # Too deep for orjson; repr would hit Python's recursion limit too.
        return "(not kept: nested too deeply to write out)"


def limits_text(mode: str) -> tuple[str, str | None]:
    """The 413 description and the endpoint's description, from the configured limits."""
    message = size_text(settings.SEGMENT_MAX_MESSAGE_BYTES)
    if mode == "single":
        return f"Over {message}", None
    if mode == "batch":
        return f"Over {size_text(settings.SEGMENT_MAX_BATCH_BYTES)} a request or {message} a message", None
    array = size_text(settings.SEGMENT_MAX_DESTINATION_BYTES)
    return f"Over {message} a message, or over {array} (decoded) an array", (
        f"Segment's partner destination contract: one message of any type (including `delete`), at most "
        f"{message}; or a JSON array of up to {settings.SEGMENT_MAX_BATCH_MESSAGES:,} messages, as Segment's "
        f"Webhooks (Actions) destination batches them (1,000 events a request by default): at most {array} "
        f"decoded (SEGMENT_MAX_DESTINATION_BYTES), each message at most {message}. `/v1/batch` keeps "
        f"{size_text(settings.SEGMENT_MAX_BATCH_BYTES)}."
    )


def endpoint(mode: str, path_type: str | None, summary: str, *, in_schema: bool = True):
    request_schema = {"batch": schema.BATCH, "destination": schema.DESTINATION}.get(mode)
    if request_schema is None:
        request_schema = schema.message_schema(path_type)
    view = type(
        f"Segment{(path_type or mode).title()}View",
        (SegmentEndpoint,),
        {"mode": mode, "path_type": path_type},
    )
    if not in_schema:
        view = extend_schema(exclude=True)(view)
        return view.as_view()
    too_large, description = limits_text(mode)
    view.post = extend_schema(
        summary=summary,
        description=description,
        tags=["Segment inbound"],
        request={"application/json": request_schema},
        auth=[{"segmentBasic": []}, {"segmentBearer": []}],
        parameters=[OpenApiParameter("X-Signature", str, OpenApiParameter.HEADER, required=False)],
        responses={
            200: OpenApiResponse(schema.OK if mode == "single" else schema.BATCH_OK, description="Stored"),
            400: OpenApiResponse(schema.ERROR, description="Invalid JSON or a message that breaks the spec"),
            401: OpenApiResponse(schema.ERROR, description="Missing or unknown key, or a bad signature"),
            413: OpenApiResponse(schema.ERROR, description=too_large),
            415: OpenApiResponse(schema.ERROR, description="A Content-Encoding other than gzip or deflate"),
            429: OpenApiResponse(schema.ERROR, description="Daily cap spent; see Retry-After"),
            503: OpenApiResponse(schema.ERROR, description="Could not be stored; retry"),
        },
    )(view.post)
    return view.as_view()
