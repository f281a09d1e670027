"""Schemathesis against our own OpenAPI schema for the email API: whatever staff send, never a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.campaigns.factories import make_contact, make_template

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application()).include(
    path_regex=r"^/api/v1/email-"
)


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """Schemathesis calls the WSGI app directly; keep the test transaction's connection open
    across its requests, as Django's test client does."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def token(db):
    from rest_framework.authtoken.models import Token

    from tests.test_admin_support import make_superuser

    make_template(name="existing")
    make_contact()
    return Token.objects.create(user=make_superuser()).key


def test_the_schema_documents_the_email_operations():
    paths = {operation.ok().path for operation in schema.get_all_operations()}
    assert paths == {
        "/api/v1/email-templates/",
        "/api/v1/email-templates/{id}/",
        "/api/v1/email-templates/{id}/preview/",
        "/api/v1/email-sends/",
        "/api/v1/email-sends/{id}/",
    }


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_email_operations_never_fail_with_a_server_error(case, token):
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=[not_a_server_error])
