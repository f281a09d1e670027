"""Inbound auth in Segment's three forms, the 401 answers, and the X-Signature check."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import orjson
import pytest
from django.test import Client

from integrations.keys import api_key_rotate
from integrations.models import InboxMessage, RejectedMessage
from tests.conftest import SegmentClient, make_integration
from tests.integrations.conftest import assert_error

pytestmark = pytest.mark.django_db

MESSAGE = {"userId": "u1", "event": "Signed Up"}


def post(path, body, **headers):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Client().post(path, data=raw, content_type="application/json", **headers)


# --- the three forms ---------------------------------------------------------------------------


def test_basic_auth_with_the_key_as_username_and_an_empty_password(segment):
    client, integration = segment
    assert client.post("/v1/track", MESSAGE, auth="basic").json() == {"success": True}
    assert InboxMessage.objects.get().integration == integration


def test_bearer_auth(segment):
    client, integration = segment
    assert client.post("/v1/track", MESSAGE, auth="bearer").json() == {"success": True}
    assert InboxMessage.objects.get().integration == integration


def test_write_key_in_the_body_on_single_and_batch(segment):
    client, integration = segment
    assert post("/v1/track", {**MESSAGE, "writeKey": client.key, "messageId": "m1"}).json() == {"success": True}
    response = post(
        "/v1/batch", {"writeKey": client.key, "batch": [{"type": "identify", "userId": "u1", "messageId": "m2"}]}
    )
    assert response.json()["accepted"] == 1
    rows = list(InboxMessage.objects.order_by("message_id"))
    assert [r.integration for r in rows] == [integration, integration]
    # The key is a credential: it is not kept in the stored message.
    assert all("writeKey" not in r.payload for r in rows)


def test_auth_scheme_and_header_are_case_insensitive_per_http(segment):
    client, _ = segment
    encoded = base64.b64encode(f"{client.key}:".encode()).decode()
    assert post("/v1/track", MESSAGE, HTTP_AUTHORIZATION=f"basic {encoded}").status_code == 200
    assert post("/v1/track", MESSAGE, HTTP_AUTHORIZATION=f"BEARER {client.key}").status_code == 200


def test_the_header_key_wins_over_a_write_key_in_the_body(db):
    first, first_key = make_integration("segment", name="first")
    second, second_key = make_integration("segment", name="second")
    response = SegmentClient(first_key).post("/v1/track", {**MESSAGE, "writeKey": second_key})
    assert response.status_code == 200
    assert InboxMessage.objects.get().integration == first


# --- 401 ---------------------------------------------------------------------------------------


def test_missing_key_is_401(db):
    body = assert_error(post("/v1/track", MESSAGE), 401, "unauthorized")
    assert body["message"] == "send the API key as Basic auth username, a Bearer token or writeKey"
    rejected = RejectedMessage.objects.get()
    assert (rejected.status_code, rejected.code, rejected.integration, rejected.path) == (
        401,
        "unauthorized",
        None,
        "/v1/track",
    )
    assert json.loads(rejected.body) == MESSAGE
    assert not InboxMessage.objects.exists()


@pytest.mark.parametrize(
    "key",
    [
        "nodot",
        "0123456789abcdef.wrongsecret",
        ".secret",
        "public.",
        "",
        "a" * 40 + ".secret",
        "abc\u0000def.secret",  # NUL used to reach PostgreSQL and answer 503
        "ünï.cödé",
    ],
)
def test_unknown_key_is_401_in_every_form(segment, key):
    client, _ = segment
    basic = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    assert_error(post("/v1/track", MESSAGE, HTTP_AUTHORIZATION=basic), 401, "unauthorized")
    if "\u0000" not in key:
        assert_error(post("/v1/track", MESSAGE, HTTP_AUTHORIZATION=f"Bearer {key}"), 401, "unauthorized")
    if key:
        body = assert_error(post("/v1/track", {**MESSAGE, "writeKey": key}), 401, "unauthorized")
        assert body["message"] == "the writeKey is unknown, revoked or its integration is disabled"
    assert not InboxMessage.objects.exists()


def test_right_public_id_with_a_wrong_secret_is_401(segment):
    client, _ = segment
    public_id = client.key.partition(".")[0]
    body = assert_error(SegmentClient(f"{public_id}.wrong").post("/v1/track", MESSAGE), 401, "unauthorized")
    assert body["message"] == "the API key is unknown, revoked or its integration is disabled"


def test_revoked_key_is_401_after_rotation_and_the_new_key_works(segment):
    client, integration = segment
    assert client.post("/v1/track", {**MESSAGE, "messageId": "before"}).status_code == 200
    new_key = api_key_rotate(integration=integration)
    assert_error(client.post("/v1/track", {**MESSAGE, "messageId": "after-old"}), 401, "unauthorized", "revoked")
    assert_error(post("/v1/track", {**MESSAGE, "writeKey": client.key}), 401, "unauthorized", "revoked")
    assert SegmentClient(new_key).post("/v1/track", {**MESSAGE, "messageId": "after-new"}).status_code == 200
    assert sorted(InboxMessage.objects.values_list("message_id", flat=True)) == ["after-new", "before"]


def test_disabled_integration_is_401(segment):
    client, integration = segment
    integration.enabled = False
    integration.save()
    assert_error(client.post("/v1/track", MESSAGE), 401, "unauthorized", "disabled")
    assert not InboxMessage.objects.exists()


@pytest.mark.parametrize(
    "header",
    ["Basic !!!notbase64", "Basic abc", "Basic é", "Basic " + base64.b64encode(b"\xff\xfe:").decode()],
)
def test_bad_basic_credentials_are_401_not_500(segment, header):
    body = assert_error(post("/v1/track", MESSAGE, HTTP_AUTHORIZATION=header), 401, "unauthorized")
    assert body["message"] == "Authorization: Basic credentials are not valid base64"


@pytest.mark.parametrize("header", ["Token abc", "Digest x", "justakey"])
def test_other_authorization_schemes_are_401(segment, header):
    body = assert_error(post("/v1/track", MESSAGE, HTTP_AUTHORIZATION=header), 401, "unauthorized")
    assert body["message"] == "Authorization must be Basic (key as username) or Bearer"


def test_a_wrong_key_is_refused_before_the_body_is_read(segment):
    # Unauthenticated callers learn nothing about the body: a bad key wins over bad JSON.
    assert_error(post("/v1/track", b"{", HTTP_AUTHORIZATION="Bearer nope.nope"), 401, "unauthorized")


# --- X-Signature -------------------------------------------------------------------------------


def sign(secret: str, raw: bytes) -> str:
    return hmac.new(secret.encode(), raw, hashlib.sha1).hexdigest()


def test_valid_signature_passes(signed):
    client, integration = signed
    raw = json.dumps({**MESSAGE, "messageId": "s1"}).encode()
    response = client.post("/v1/track", raw, headers={"HTTP_X_SIGNATURE": sign("s3cret", raw)})
    assert response.json() == {"success": True}
    assert InboxMessage.objects.get().integration == integration


def test_signature_hex_is_case_insensitive(signed):
    client, _ = signed
    raw = json.dumps(MESSAGE).encode()
    response = client.post("/v1/track", raw, headers={"HTTP_X_SIGNATURE": sign("s3cret", raw).upper()})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "signature",
    [None, "", "deadbeef", "é" * 40, "0" * 40],
)
def test_missing_or_wrong_signature_is_401(signed, signature):
    client, integration = signed
    raw = json.dumps(MESSAGE).encode()
    headers = {} if signature is None else {"HTTP_X_SIGNATURE": signature}
    body = assert_error(client.post("/v1/track", raw, headers=headers), 401, "invalid_signature", "X-Signature")
    assert not InboxMessage.objects.exists()
    rejected = RejectedMessage.objects.get()
    assert (rejected.integration, rejected.status_code, rejected.code) == (integration, 401, "invalid_signature")
    assert rejected.message == body["message"]


def test_signature_of_another_body_is_401(signed):
    client, _ = signed
    raw = json.dumps(MESSAGE).encode()
    other = json.dumps({**MESSAGE, "event": "Tampered"}).encode()
    assert_error(
        client.post("/v1/track", other, headers={"HTTP_X_SIGNATURE": sign("s3cret", raw)}), 401, "invalid_signature"
    )


def test_signature_with_another_secret_is_401(signed):
    client, _ = signed
    raw = json.dumps(MESSAGE).encode()
    response = client.post("/v1/track", raw, headers={"HTTP_X_SIGNATURE": sign("other", raw)})
    assert_error(response, 401, "invalid_signature")


def test_webhooks_actions_array_is_signed_over_its_first_element(signed):
    client, _ = signed
    array = [{"type": "identify", "userId": "u1"}, {"type": "identify", "userId": "u2"}]
    signature = sign("s3cret", orjson.dumps(array[0]))
    response = client.post("/v1/destination", array, headers={"HTTP_X_SIGNATURE": signature})
    assert response.json()["accepted"] == 2
    # ...or over the whole body.
    raw = json.dumps([{"type": "identify", "userId": "u3"}]).encode()
    assert client.post("/v1/destination", raw, headers={"HTTP_X_SIGNATURE": sign("s3cret", raw)}).status_code == 200


def test_no_signature_needed_without_a_shared_secret(segment):
    client, _ = segment
    assert client.post("/v1/track", MESSAGE, headers={"HTTP_X_SIGNATURE": "garbage"}).status_code == 200


def test_a_signed_array_nested_too_deeply_is_refused_not_a_500(signed):
    client, _ = signed
    deep: list = []
    for _ in range(300):
        deep = [deep]
    raw = json.dumps([{"type": "track", "userId": "u1", "event": "E", "properties": {"d": deep}}]).encode()
    response = client.post("/v1/destination", raw, headers={"HTTP_X_SIGNATURE": sign("s3cret", b"other")})
    assert_error(response, 401, "invalid_signature")
    # Signed over the whole body, it passes the check and the item is refused by index.
    response = client.post("/v1/destination", raw, headers={"HTTP_X_SIGNATURE": sign("s3cret", raw)})
    assert response.status_code == 200
    assert response.json()["rejected"][0]["code"] == "too_deep"
