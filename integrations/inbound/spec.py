"""Segment message checks on the hot path, in plain Python (no serializers: too slow per message).

`normalize()` turns one raw message into the row we store, or raises SpecError naming the
field and the rule. Field-name casing is tolerated the way Segment's docs warn it varies
(userId, user_id, userID...).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import orjson

TYPES = ("identify", "track", "page", "screen", "group", "alias", "delete")

# Folded (lowercase, no underscores) spelling → the canonical Segment name.
CANONICAL_KEYS = {
    key.lower().replace("_", ""): key
    for key in (
        "type",
        "userId",
        "anonymousId",
        "messageId",
        "timestamp",
        "originalTimestamp",
        "sentAt",
        "receivedAt",
        "event",
        "name",
        "category",
        "properties",
        "traits",
        "context",
        "integrations",
        "groupId",
        "previousId",
        "email",
        "writeKey",
        "channel",
        "version",
        "projectId",
    )
}
OBJECT_FIELDS = ("properties", "traits")
ID_FIELDS = ("userId", "anonymousId", "groupId", "previousId", "messageId")
MAX_ID_LENGTH = 255


class SpecError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def parse_timestamp(value: Any) -> datetime | None:
    """Lenient: ISO 8601 (with or without zone), RFC 2822, or epoch seconds/milliseconds."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit() and value.isascii():
            # Epoch seconds or milliseconds sent as a string, e.g. "1550620734".
            value = float(value.strip())
        if isinstance(value, int | float):
            seconds = value / 1000 if abs(value) > 1e11 else value
            parsed = datetime.fromtimestamp(seconds, tz=UTC)
        elif not isinstance(value, str) or len(value) > 64:
            return None
        else:
            text = value.strip()
            try:
                parsed = datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
            except ValueError:
                try:
                    parsed = parsedate_to_datetime(text)
                except (TypeError, ValueError, IndexError):
                    return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        if not 1970 <= parsed.year <= 2200:
            return None
        return parsed.astimezone(UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _identifier(message: dict, key: str) -> str:
    value = message.get(key)
    if value is None or value == "":
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SpecError("invalid_field", f"{key} must be a string, not {type(value).__name__}")
    text = str(value)
    if len(text) > MAX_ID_LENGTH:
        raise SpecError("invalid_field", f"{key} must be at most {MAX_ID_LENGTH} characters")
    return text


def canonical_keys(raw: dict) -> dict:
    message = {}
    for key, value in raw.items():
        canonical = CANONICAL_KEYS.get(key.lower().replace("_", ""), key) if isinstance(key, str) else key
        # An exact canonical spelling wins over a variant sent alongside it.
        if canonical in message and key != canonical:
            continue
        message[canonical] = value
    return message


def message_email(message: dict) -> str:
    for source in (
        message,
        message.get("traits"),
        message.get("properties"),
        (message.get("context") or {}).get("traits"),
    ):
        if isinstance(source, dict):
            value = source.get("email")
            if isinstance(value, str) and value.strip():
                return value.strip().lower()[:320]
    return ""


def encoded_size(item: Any) -> int:
    """The message's size as JSON, or SpecError when it cannot be written as JSON.

    orjson parses up to 1,024 levels of nesting but writes only 254, so a message nested 255+
    deep used to fail later, when stored, with a 500. Callers that store messages (the views,
    replays) check here first.
    """
    try:
        return len(orjson.dumps(item))
    except TypeError:
        raise SpecError(
            "too_deep", "the message is nested too deeply: at most 254 levels of objects and arrays"
        ) from None


# Set per delivery, not per message: a raw HTTP retry resends the same message with a new
# sentAt, and must still be recognised as a duplicate.
_TRANSPORT_KEYS = {"sentat", "writekey"}


def deterministic_message_id(raw: dict) -> str:
    content = {k: v for k, v in raw.items() if k.lower().replace("_", "") not in _TRANSPORT_KEYS}
    digest = hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"sy-{digest[:40]}"


def nul_path(value: Any, path: str = "") -> str | None:
    """Where the first NUL character sits in a parsed JSON value (as a dotted path), or None."""
    if isinstance(value, str):
        return (path or "the message") if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if "\x00" in key:
                return child.replace("\x00", "\\u0000")
            found = nul_path(item, child)
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = nul_path(item, f"{path}[{index}]")
            if found:
                return found
    return None


def normalize(raw: Any, *, path_type: str | None, received_at: datetime, check_nul: bool = True) -> dict:
    """Check one message and return the inbox row fields for it.

    `check_nul=False` skips the NUL walk when the caller knows the body holds no \\u0000.
    """
    if not isinstance(raw, dict):
        raise SpecError("invalid_body", f"a message must be a JSON object, not {type(raw).__name__}")
    if check_nul:
        # PostgreSQL cannot store NUL in text or jsonb: storing one failed as a database
        # error (503, retried forever by clients). It is refused as bad input instead.
        where = nul_path(raw)
        if where:
            raise SpecError("invalid_field", f"{where[:200]} contains a NUL character (\\u0000), which is not allowed")
    message = canonical_keys(raw)

    msg_type = path_type or message.get("type")
    if not isinstance(msg_type, str) or not msg_type:
        raise SpecError("missing_field", "type is required on every message sent to /v1/batch or /v1/destination")
    msg_type = msg_type.strip().lower()
    if msg_type not in TYPES:
        raise SpecError("invalid_field", f"type must be one of {', '.join(TYPES)}, not {msg_type[:40]!r}")
    message["type"] = msg_type

    ids = {key: _identifier(message, key) for key in ID_FIELDS}
    user_id, anonymous_id = ids["userId"], ids["anonymousId"]
    if not user_id and not anonymous_id:
        raise SpecError("missing_field", "userId or anonymousId is required")
    for key in OBJECT_FIELDS + ("context", "integrations"):
        value = message.get(key)
        # Segment's own delete example sends "context": [] and "integrations": []: tolerate
        # empty arrays, refuse anything else that is not an object.
        if value is not None and not isinstance(value, dict) and value != []:
            raise SpecError("invalid_field", f"{key} must be an object")
        if value == []:
            message[key] = {}

    event = ""
    if msg_type == "track":
        event = message.get("event")
        if not isinstance(event, str) or not event.strip():
            raise SpecError("missing_field", "event is required on track calls and must be a non-empty string")
        event = event.strip()[:255]
    elif msg_type in ("page", "screen"):
        name = message.get("name")
        event = name.strip()[:255] if isinstance(name, str) else ""
    elif msg_type == "group" and not ids["groupId"]:
        raise SpecError("missing_field", "groupId is required on group calls")
    elif msg_type == "alias":
        if not ids["previousId"]:
            raise SpecError("missing_field", "previousId is required on alias calls")
        if not user_id:
            raise SpecError("missing_field", "userId is required on alias calls")
    elif msg_type == "delete" and not user_id:
        raise SpecError("missing_field", "userId is required on delete calls")

    message_id = ids["messageId"] or deterministic_message_id(raw)
    message["messageId"] = message_id
    message.pop("writeKey", None)

    timestamp = event_time(message, received_at)
    # Segment's own receivedAt (a forwarded or archived message) is kept; the row's
    # received_at column says when it reached us.
    upstream = parse_timestamp(message.get("receivedAt"))
    if not upstream or upstream > received_at:
        message["receivedAt"] = received_at.isoformat().replace("+00:00", "Z")
    message["timestamp"] = timestamp.isoformat().replace("+00:00", "Z")
    return {
        "message_id": message_id,
        "type": msg_type,
        "user_id": user_id,
        "anonymous_id": anonymous_id,
        "email": message_email(message),
        "event": event,
        "payload": message,
        "timestamp": timestamp,
    }


def event_time(message: dict, received_at: datetime) -> datetime:
    """When the event happened, by our clock.

    The sender's time is `timestamp` when it sent one, else `originalTimestamp`. RudderStack's
    SDKs stamp `originalTimestamp` with the moment of the call on every message, next to the
    caller's own `timestamp`; RudderStack's server, too, takes `timestamp` first, so a
    back-dated identify keeps its date.

    With `sentAt`, the sender's clock is corrected as Segment does:
    timestamp = receivedAt - (sentAt - sender's time). A browser whose clock runs two hours
    fast is not dated two hours ahead, where its identify would beat a later one from a server.
    Without `sentAt` the sender's time stands; without either, the event happened when it
    arrived. Unparseable values are ignored, as Segment does.

    A message that already carries a receivedAt was received by Segment (a destination
    forward, an archive line): Segment corrected its clock then, so its timestamp stands, and
    the rule uses Segment's receivedAt, not the moment it reached us. Otherwise a retried
    forward of an older identify would be dated now and overwrite newer traits.
    """
    stamp = parse_timestamp(message.get("timestamp"))
    upstream = parse_timestamp(message.get("receivedAt"))
    if upstream and upstream <= received_at:  # a receipt in the future is nobody's
        if stamp:
            return stamp
        received_at = upstream
    sender_time = stamp or parse_timestamp(message.get("originalTimestamp"))
    if sender_time is None:
        return received_at
    sent = parse_timestamp(message.get("sentAt"))
    if sent:
        try:
            return received_at - (sent - sender_time)
        except OverflowError:
            pass
    return sender_time
