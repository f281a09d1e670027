"""Schemathesis against our own OpenAPI schema for the outbound API: whatever staff send, never a 5xx,
and every answer matches the schema."""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.outbound.support import source_integration

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application()).include(
    path_regex=r"^/api/v1/integrations/"
)


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """Schemathesis calls the WSGI app directly; keep the test transaction's connection open."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def token(db, collector):
    from rest_framework.authtoken.models import Token

    from tests.test_admin_support import make_superuser

    source_integration(collector.url)
    return Token.objects.create(user=make_superuser()).key


def test_the_schema_documents_the_outbound_operations():
    paths = {operation.ok().path for operation in schema.get_all_operations()}
    assert paths == {
        "/api/v1/integrations/{integration_id}/sync-runs/",
        "/api/v1/integrations/{integration_id}/sync-items/",
        "/api/v1/integrations/{integration_id}/send-test/",
    }


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_outbound_operations_never_fail_with_a_server_error(case, token):
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=[not_a_server_error])
