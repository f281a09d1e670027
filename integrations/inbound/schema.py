"""OpenAPI shapes of the Segment endpoints, for the docs page and for schemathesis."""

from __future__ import annotations

_ID = {"type": "string", "maxLength": 255}
_OBJECT = {"type": "object", "additionalProperties": True}
_COMMON = {
    "userId": _ID,
    "anonymousId": _ID,
    "messageId": _ID,
    "timestamp": {"type": "string", "format": "date-time"},
    "originalTimestamp": {"type": "string", "format": "date-time"},
    "sentAt": {"type": "string", "format": "date-time"},
    "context": _OBJECT,
    "integrations": _OBJECT,
    "writeKey": {"type": "string"},
}
_BY_TYPE = {
    "identify": ({"traits": _OBJECT}, []),
    "track": ({"event": {"type": "string", "minLength": 1}, "properties": _OBJECT}, ["event"]),
    "page": ({"name": {"type": "string"}, "category": {"type": "string"}, "properties": _OBJECT}, []),
    "screen": ({"name": {"type": "string"}, "properties": _OBJECT}, []),
    "group": ({"groupId": _ID, "traits": _OBJECT}, ["groupId"]),
    "alias": ({"previousId": _ID}, ["previousId", "userId"]),
    "delete": ({}, ["userId"]),
}


def message_schema(message_type: str | None) -> dict:
    if message_type is None:
        props = dict(_COMMON)
        props["type"] = {"type": "string", "enum": list(_BY_TYPE)}
        for extra, _required in _BY_TYPE.values():
            props.update(extra)
        return {"type": "object", "properties": props, "required": ["type"], "additionalProperties": True}
    extra, required = _BY_TYPE[message_type]
    return {
        "type": "object",
        "properties": {**_COMMON, **extra},
        "required": required,
        "additionalProperties": True,
    }


BATCH = {
    "type": "object",
    "properties": {
        "batch": {"type": "array", "items": message_schema(None), "maxItems": 2500},
        "context": _OBJECT,
        "sentAt": {"type": "string", "format": "date-time"},
        "writeKey": {"type": "string"},
    },
    "required": ["batch"],
}
# /v1/destination: one message, or a Webhooks (Actions) array of them.
DESTINATION = {
    "oneOf": [
        message_schema(None),
        {"type": "array", "items": message_schema(None), "maxItems": 2500},
    ]
}
OK = {"type": "object", "properties": {"success": {"type": "boolean"}}, "required": ["success"]}
BATCH_OK = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean"},
        "accepted": {"type": "integer"},
        "duplicates": {"type": "integer"},
        "rejected": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer"},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
    "required": ["success"],
}
ERROR = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean"},
        "code": {"type": "string"},
        "message": {"type": "string"},
    },
    "required": ["success", "code", "message"],
}
