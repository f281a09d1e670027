"""Schemathesis against our own OpenAPI schema (/api/schema/), for the Segment /v1/* operations:
no 5xx, and every answer conforms to the documented status codes, content type and bodies."""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    allow_header_conformance,
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from integrations.models import InboxMessage
from tests.conftest import make_integration
from tests.integrations.conftest import basic

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application()).include(path_regex=r"^/v1/")

CHECKS = [
    allow_header_conformance,
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """Schemathesis calls the WSGI app directly, so Django's request signals close the database
    connection after each request, and with it the test transaction on PostgreSQL. Django's own
    test client detaches the same handler; do as it does."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def key(db):
    _, key = make_integration("segment", name="schemathesis")
    return key


def test_schema_documents_every_inbound_operation():
    paths = {operation.ok().path for operation in schema.get_all_operations()}
    assert paths == {
        "/v1/identify",
        "/v1/track",
        "/v1/page",
        "/v1/screen",
        "/v1/group",
        "/v1/alias",
        "/v1/batch",
        "/v1/import",
        "/v1/destination",
    }


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_inbound_operations_conform_to_the_schema(case, key):
    case.call_and_validate(headers={"Authorization": basic(key)}, checks=CHECKS)


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
def test_inbound_operations_without_a_key_conform_too(case):
    response = case.call_and_validate(checks=CHECKS)
    # Schemathesis also tries other methods (405, or 200 for OPTIONS); a POST needs a key.
    if case.method.upper() == "POST":
        assert response.status_code in (400, 401, 413), response.status_code
    assert not InboxMessage.objects.exists()
