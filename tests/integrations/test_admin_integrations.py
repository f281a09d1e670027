"""The integration admin: settings as fields with help text, keys, actions, usage."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils.html import escape

from integrations.keys import api_key_check
from integrations.kinds.base import KINDS
from integrations.models import ApiKey, Integration
from tests.conftest import SegmentClient, make_integration
from tests.test_admin_support import form_data

CHANGELIST = reverse("admin:integrations_integration_changelist")


def change_url(integration: Integration) -> str:
    return reverse("admin:integrations_integration_change", args=[integration.pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_setting_is_a_field_with_its_help_text(staff, kind):
    integration, _ = make_integration(kind)
    response = staff.get(change_url(integration))
    assert response.status_code == 200
    html = response.content.decode()
    form = response.context["adminform"].form
    for spec in KINDS[kind].settings:
        assert f"setting_{spec.name}" in form.fields
        assert escape(spec.help) in html
    for name in ("daily_cap", "shared_secret"):
        assert (name in form.fields) == KINDS[kind].inbound


def test_saving_the_form_stores_parsed_settings(staff):
    integration, _ = make_integration("loops")
    page = staff.get(change_url(integration))
    data = form_data(page, "integration_form")
    data.update({"setting_event_filter": "Signed Up, Churned", "setting_unknown_traits": "raw", "daily_cap": "500"})
    response = staff.post(change_url(integration), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    integration.refresh_from_db()
    assert integration.settings == {"event_filter": "Signed Up, Churned", "unknown_traits": "raw"}
    assert integration.daily_cap == 500
    assert integration.behaviour().event_names() == {"Signed Up", "Churned"}


def test_defaults_are_not_stored_and_unknown_keys_survive(staff):
    integration, _ = make_integration("loops")
    Integration.objects.filter(pk=integration.pk).update(settings={"unknown_traits": "raw", "kept": 1})
    data = form_data(staff.get(change_url(integration)), "integration_form")
    data["setting_unknown_traits"] = "infer"
    assert staff.post(change_url(integration), data).status_code == 302
    integration.refresh_from_db()
    assert integration.settings == {"kept": 1}


def test_invalid_values_are_reported_on_their_field(staff):
    integration, _ = make_integration("segment_source", write_key="wk")
    data = form_data(staff.get(change_url(integration)), "integration_form")
    data["setting_send_delay_minutes"] = "-3"
    response = staff.post(change_url(integration), data)
    assert response.status_code == 200
    assert "setting_send_delay_minutes" in response.context["adminform"].form.errors


def test_secret_settings_are_not_shown_and_blank_keeps_them(staff):
    integration, _ = make_integration("segment_source", write_key="very-secret-write-key")
    page = staff.get(change_url(integration))
    assert "very-secret-write-key" not in page.content.decode()
    data = form_data(page, "integration_form")
    data["setting_grow_enabled"] = "on"
    assert staff.post(change_url(integration), data).status_code == 302
    integration.refresh_from_db()
    assert integration.settings == {"write_key": "very-secret-write-key", "grow_enabled": True}


def test_adding_an_inbound_integration_shows_its_key_once(staff):
    add = reverse("admin:integrations_integration_add")
    page = staff.get(add + "?kind=promoter")
    assert "setting_event_filter" in page.context["adminform"].form.fields
    data = form_data(page, "integration_form")
    data["name"] = "Promoter NPS"
    response = staff.post(add + "?kind=promoter", data, follow=True)
    integration = Integration.objects.get(name="Promoter NPS")
    assert integration.kind == "promoter"
    assert integration.daily_cap == KINDS["promoter"].default_daily_cap
    shown = [m for m in messages_of(response) if "API key" in m]
    assert len(shown) == 1
    key = shown[0].split(" is ")[1].split(" ")[0]
    assert api_key_check(key) == integration


def test_add_page_without_a_kind_links_to_each_kind(staff):
    page = staff.get(reverse("admin:integrations_integration_add"))
    html = page.content.decode()
    for name in KINDS:
        assert f'href="?kind={name}"' in html


def test_rotate_key_revokes_the_old_one_and_shows_the_new(staff):
    integration, old_key = make_integration("segment", name="Site")
    response = staff.post(CHANGELIST, {"action": "rotate_key", "_selected_action": [integration.pk]}, follow=True)
    texts = messages_of(response)
    assert any("Rotated 1 key(s)" in t for t in texts)
    new_key = next(t for t in texts if t.startswith("New API key for Site: ")).split(": ")[1].split(" ")[0]
    assert api_key_check(old_key) is None
    assert api_key_check(new_key) == integration
    assert ApiKey.objects.filter(integration=integration, revoked_at__isnull=False).count() == 1


def test_rotate_skips_outbound_integrations(staff):
    outbound, _ = make_integration("segment_source", write_key="wk")
    response = staff.post(CHANGELIST, {"action": "rotate_key", "_selected_action": [outbound.pk]}, follow=True)
    assert any("Rotated 0 key(s)" in t and "Skipped 1 outbound" in t for t in messages_of(response))
    assert not ApiKey.objects.filter(integration=outbound).exists()


def test_enable_and_disable_report_counts(staff):
    first, key = make_integration("segment", name="A")
    second, _ = make_integration("segment", name="B")
    Integration.objects.filter(pk=second.pk).update(enabled=False)
    both = [first.pk, second.pk]
    # The key is in use (and so remembered by this process) when staff disable it.
    assert SegmentClient(key).post("/v1/track", {"userId": "u", "event": "x"}).status_code == 200
    response = staff.post(CHANGELIST, {"action": "disable", "_selected_action": both}, follow=True)
    assert "Disabled 1 integration(s)." in messages_of(response)
    assert not Integration.objects.filter(enabled=True).exists()
    assert SegmentClient(key).post("/v1/track", {"userId": "u", "event": "x"}).status_code == 401
    response = staff.post(CHANGELIST, {"action": "enable", "_selected_action": both}, follow=True)
    assert "Enabled 2 integration(s)." in messages_of(response)
    assert SegmentClient(key).post("/v1/track", {"userId": "u", "event": "x"}).status_code == 200


def test_changelist_shows_todays_requests_against_the_cap_and_the_key_prefix(staff):
    integration, key = make_integration("segment", name="Capped", daily_cap=10)
    client = SegmentClient(key)
    for n in range(3):
        client.post("/v1/track", {"userId": "u", "event": f"e{n}"})
    response = staff.get(CHANGELIST)
    html = response.content.decode()
    assert "3 / 10" in html
    assert key.split(".")[0] in html
    assert key.split(".")[1] not in html


def test_changelist_costs_the_same_queries_for_more_integrations(staff, django_assert_max_num_queries):
    make_integration("segment", name="one")
    staff.get(CHANGELIST)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        staff.get(CHANGELIST)
    for n in range(5):
        make_integration("loops", name=f"more {n}")
    with CaptureQueriesContext(connection) as many:
        staff.get(CHANGELIST)
    assert len(many) == len(few)


def test_change_page_draws_the_usage_chart(staff):
    integration, key = make_integration("segment")
    client = SegmentClient(key)
    client.post("/v1/batch", {"batch": [{"type": "track", "userId": "u", "event": "a"}, {"type": "track"}]})
    html = staff.get(change_url(integration)).content.decode()
    assert "<svg" in html
    assert "1 requests" in html
    assert "1 rejected" in html


def test_api_keys_inline_is_read_only_and_shows_revoked_state(staff):
    integration, _ = make_integration("segment")
    staff.post(CHANGELIST, {"action": "rotate_key", "_selected_action": [integration.pk]})
    html = staff.get(change_url(integration)).content.decode()
    assert html.count(">revoked<") == 1
    assert html.count(">active<") == 1
