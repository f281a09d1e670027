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


def test_the_faster_row_checkbox_and_badges_are_the_themes_own_markup(staff_client):
    """common.admin_tools renders unfold's row checkbox and badges once a page, not once a row."""
    from django.contrib.admin import helpers
    from unfold import admin as unfold_admin
    from unfold import utils as unfold_utils

    from contacts.models import Contact

    contact = Contact.objects.order_by("pk").first()
    model_admin = admin.site._registry[Contact]
    expected = unfold_admin.checkbox.render(helpers.ACTION_CHECKBOX_NAME, str(contact.pk))
    assert model_admin.action_checkbox(contact) == expected
    html = staff_client.get(reverse("admin:contacts_contact_changelist")).content.decode()
    assert expected in html
    badge = unfold_utils.display_for_label("subscribed", "-", {"subscribed": "success"})
    assert badge in html
