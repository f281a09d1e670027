"""Hostile input never yields a 5xx: property tests over every inbound endpoint and the parsers.

Example counts are modest so the suite stays quick; hypothesis still shrinks any failure to a
small reproducible body.
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from datetime import UTC, datetime

import orjson
import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrations.inbound.spec import SpecError, normalize, parse_timestamp
from integrations.models import InboxMessage

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    "/v1/identify",
    "/v1/track",
    "/v1/page",
    "/v1/screen",
    "/v1/group",
    "/v1/alias",
    "/v1/batch",
    "/v1/import",
    "/v1/destination",
]
ALLOWED = {200, 400, 401, 413, 415, 429}
FIELDS = [
    "type",
    "userId",
    "user_id",
    "userID",
    "anonymousId",
    "anonymous_id",
    "messageId",
    "event",
    "name",
    "groupId",
    "previousId",
    "traits",
    "properties",
    "context",
    "integrations",
    "timestamp",
    "originalTimestamp",
    "sentAt",
    "receivedAt",
    "email",
    "writeKey",
]
TYPES = ["identify", "track", "page", "screen", "group", "alias", "delete", "Identify", "TRACK", "other", ""]

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

scalars = (
    st.none()
    | st.booleans()
    # What orjson.loads yields: larger integers arrive as floats.
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(
        ["", "\u0000", "2024-01-01T00:00:00Z", "Tue, 19 Feb 2019 23:58:54 +0000", "1550620734", "é" * 300]
    )
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
messages = st.dictionaries(
    st.sampled_from(FIELDS) | st.text(max_size=8),
    json_values,
    max_size=8,
) | st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES), "userId": st.text(max_size=300)},
    optional={k: json_values for k in FIELDS if k not in ("type", "userId")},
)
bodies = (
    messages
    | json_values
    | st.fixed_dictionaries(
        {"batch": st.lists(messages | json_values, max_size=6)},
        optional={"sentAt": json_values, "context": json_values},
    )
    | st.lists(messages, max_size=6)
)


def check_answer(response) -> None:
    assert response.status_code in ALLOWED, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert isinstance(body, dict)
    if response.status_code == 200:
        assert body["success"] is True
        if "rejected" in body:
            for problem in body["rejected"]:
                assert set(problem) == {"index", "code", "message"}
    else:
        assert set(body) == {"success", "code", "message"}, body
        assert body["success"] is False and body["code"] and body["message"]


def auth(key: str) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


@FUZZ
@given(path=st.sampled_from(ENDPOINTS), body=bodies, use_gzip=st.booleans())
def test_arbitrary_json_bodies_never_get_a_5xx(segment, path, body, use_gzip):
    client, _ = segment
    raw = json.dumps(body).encode()
    headers = auth(client.key)
    if use_gzip:
        raw = gzip.compress(raw)
        headers["HTTP_CONTENT_ENCODING"] = "gzip"
    check_answer(Client().post(path, data=raw, content_type="application/json", **headers))


@FUZZ
@given(path=st.sampled_from(ENDPOINTS), body=messages, nested=st.integers(min_value=1, max_value=3000))
def test_deeply_nested_properties_never_get_a_5xx(segment, path, body, nested):
    client, _ = segment
    deep = "[" * nested + "]" * nested
    raw = json.dumps({**body, "userId": "u1", "event": "E", "type": "track"}).encode()
    raw = raw[:-1] + b', "properties": {"deep": ' + deep.encode() + b"}}"
    check_answer(Client().post(path, data=raw, content_type="application/json", **auth(client.key)))


@FUZZ
@given(
    path=st.sampled_from(ENDPOINTS),
    raw=st.binary(max_size=400),
    encoding=st.sampled_from(["", "gzip", "deflate", "br", "x-gzip"]),
)
def test_arbitrary_bytes_never_get_a_5xx(segment, path, raw, encoding):
    client, _ = segment
    headers = auth(client.key)
    if encoding:
        headers["HTTP_CONTENT_ENCODING"] = encoding
    check_answer(Client().post(path, data=raw, content_type="application/json", **headers))


@FUZZ
@given(
    path=st.sampled_from(ENDPOINTS),
    authorization=st.text(alphabet=st.characters(max_codepoint=255, exclude_characters="\r\n"), max_size=60)
    | st.sampled_from(["Basic ", "Bearer ", "Basic ====", "Bearer .", "Basic Og=="]),
    signature=st.none() | st.text(alphabet=st.characters(max_codepoint=255, exclude_characters="\r\n"), max_size=50),
    write_key=st.none() | json_values,
)
def test_arbitrary_credentials_never_get_a_5xx(signed, path, authorization, signature, write_key):
    client, _ = signed
    body = {"type": "track", "userId": "u1", "event": "E"}
    if write_key is not None:
        body["writeKey"] = write_key
    if path in ("/v1/batch", "/v1/import"):
        body = {"batch": [body], **({"writeKey": write_key} if write_key is not None else {})}
    headers = {"HTTP_AUTHORIZATION": authorization}
    if signature is not None:
        headers["HTTP_X_SIGNATURE"] = signature
    response = Client().post(path, data=json.dumps(body), content_type="application/json", **headers)
    check_answer(response)
    # Nothing random authenticates: the key and the signature are both needed.
    assert response.status_code == 401


@FUZZ
@given(path=st.sampled_from(ENDPOINTS), body=bodies)
def test_arbitrary_json_with_write_key_in_the_body(segment, path, body):
    client, _ = segment
    if isinstance(body, dict):
        body = {**body, "writeKey": client.key}
    check_answer(Client().post(path, data=json.dumps(body), content_type="application/json"))


def test_lone_surrogates_and_bad_utf8_are_invalid_json(segment):
    client, _ = segment
    for raw in [b'{"userId": "\\ud800", "event": "E"}', b'{"userId": "\xed\xa0\x80"}', b'{"userId": "\xc3"}']:
        response = Client().post("/v1/track", data=raw, content_type="application/json", **auth(client.key))
        check_answer(response)
        assert response.status_code == 400 and response.json()["code"] == "invalid_json"


def test_deflate_bodies_are_accepted(segment):
    client, _ = segment
    raw = zlib.compress(json.dumps({"userId": "u1", "event": "E"}).encode())
    response = Client().post(
        "/v1/track", data=raw, content_type="application/json", HTTP_CONTENT_ENCODING="deflate", **auth(client.key)
    )
    assert response.json() == {"success": True}
    assert InboxMessage.objects.count() == 1


# --- the parsers on their own ----------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    raw=messages | json_values,
    path_type=st.sampled_from([None, "identify", "track", "page", "screen", "group", "alias"]),
)
def test_normalize_returns_a_storable_row_or_a_spec_error(raw, path_type):
    received = datetime(2024, 6, 1, tzinfo=UTC)
    try:
        row = normalize(raw, path_type=path_type, received_at=received)
    except SpecError as error:
        assert error.code and error.message and error.status in (400, 413)
        return
    assert row["type"] in ("identify", "track", "page", "screen", "group", "alias", "delete")
    assert row["user_id"] or row["anonymous_id"]
    for field, limit in (("message_id", 255), ("user_id", 255), ("anonymous_id", 255), ("email", 320), ("event", 255)):
        assert isinstance(row[field], str) and len(row[field]) <= limit
    assert row["timestamp"].tzinfo is not None
    assert b"\\u0000" not in orjson.dumps(row["payload"], option=orjson.OPT_NON_STR_KEYS)
    for key in ("user_id", "anonymous_id", "message_id", "email", "event"):
        assert "\x00" not in row[key]


@settings(max_examples=300, deadline=None)
@given(value=json_values | st.text() | st.integers() | st.floats())
def test_parse_timestamp_returns_an_aware_datetime_or_none(value):
    parsed = parse_timestamp(value)
    assert parsed is None or (parsed.tzinfo is not None and 1969 <= parsed.year <= 2201)
