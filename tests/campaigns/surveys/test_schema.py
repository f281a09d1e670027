"""Schemathesis against our own OpenAPI schema for the survey API: whatever staff send, a 4xx
naming what is wrong, never a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.campaigns.surveys.conftest import make_campaign, survey_template

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application()).include(
    path_regex=r"^/api/v1/(campaigns|survey-|webhooks)"
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
def token(db):
    from rest_framework.authtoken.models import Token

    from tests.test_admin_support import make_superuser

    survey_template(name="existing")
    make_campaign(name="existing")
    return Token.objects.create(user=make_superuser()).key


def test_the_schema_documents_the_survey_operations():
    paths = {operation.ok().path for operation in schema.get_all_operations()}
    assert paths == {
        "/api/v1/campaigns/",
        "/api/v1/campaigns/{id}/",
        "/api/v1/campaigns/{id}/activate/",
        "/api/v1/campaigns/{id}/pause/",
        "/api/v1/campaigns/{id}/metrics/",
        "/api/v1/survey-dispatches/",
        "/api/v1/survey-dispatches/{id}/",
        "/api/v1/survey-responses/",
        "/api/v1/survey-responses/{id}/",
        "/api/v1/webhooks/",
        "/api/v1/webhooks/{id}/",
    }


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_survey_operations_never_fail_with_a_server_error(case, token):
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=[not_a_server_error])
