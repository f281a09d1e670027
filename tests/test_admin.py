"""Every admin page loads for a superuser: changelist, add, and change for an existing row."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from tests.test_admin_support import populate

MODELS = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


@pytest.fixture
def staff_client(staff):
    populate()
    return staff


@pytest.mark.parametrize(("model", "model_admin"), MODELS, ids=[m._meta.label for m, _ in MODELS])
def test_admin_pages_load(staff_client, rf, model, model_admin):
    prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
    response = staff_client.get(reverse(f"{prefix}_changelist"))
    assert response.status_code == 200
    request = rf.get("/")
    request.user = response.wsgi_request.user
    if model_admin.has_add_permission(request):
        assert staff_client.get(reverse(f"{prefix}_add")).status_code == 200
    obj = model._default_manager.order_by("pk").first()
    if obj is not None:
        assert staff_client.get(reverse(f"{prefix}_change", args=[obj.pk])).status_code == 200


def test_index_lists_the_apps(staff_client):
    response = staff_client.get("/admin/")
    assert response.status_code == 200
    for label in ("Integrations", "Inbox messages", "Contacts", "Suppressions"):
        assert label in response.content.decode()


def test_every_switchyard_model_has_a_row_to_open(staff_client):
    ours = [m for m, _ in MODELS if m._meta.app_label in ("integrations", "contacts")]
    empty = [m._meta.label for m in ours if not m._default_manager.exists()]
    assert empty == []
