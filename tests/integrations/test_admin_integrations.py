"""The integration admin: settings as fields with help text, keys, actions, usage."""

from __future__ import annotations

import json
from html import unescape

import pytest
from django.urls import reverse
from django.utils.html import escape

from integrations.admin import key_last_used
from integrations.keys import api_key_check
from integrations.kinds.base import KINDS
from integrations.models import ApiKey, InboxMessage, Integration
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
    # (site_key is the capture script's public key, made with the integration)
    assert integration.settings == {
        "write_key": "very-secret-write-key",
        "grow_enabled": True,
        "site_key": integration.settings["site_key"],
    }


def test_adding_an_inbound_integration_shows_its_key_once_on_its_own_page(staff, settings):
    settings.SITE_URL = "https://switchyard.example.com"
    add = reverse("admin:integrations_integration_add")
    page = staff.get(add + "?kind=promoter")
    form = page.context["adminform"].form
    assert "setting_promoter__event_filter" in form.fields
    data = form_data(page, "integration_form")
    assert data["kind"] == "promoter"
    data["name"] = "Promoter NPS"
    response = staff.post(add, data)
    integration = Integration.objects.get(name="Promoter NPS")
    key_page = reverse("admin:integrations_integration_key", args=[integration.pk])
    assert response.status_code == 302 and response["Location"] == key_page
    assert integration.kind == "promoter"
    assert integration.daily_cap == KINDS["promoter"].default_daily_cap
    html = staff.get(key_page).content.decode()
    key = html.split('id="sy-new-key">')[1].split("<")[0]
    assert api_key_check(key) == integration
    # Ready to paste: analytics.js, the Python library and Webhooks (Actions), with this host.
    assert f'analytics.load("{key}"' in html and 'apiHost: "switchyard.example.com/v1"' in html
    assert f'analytics.write_key = "{key}"' in html and 'analytics.host = "https://switchyard.example.com"' in html
    assert "https://switchyard.example.com/v1/destination" in html
    # Shown once: the key leaves the session with the first view, and appears in no message.
    again = staff.get(key_page).content.decode()
    assert key not in again and "already shown" in again
    assert not any(key in m for m in messages_of(staff.get(CHANGELIST)))


def test_add_page_shows_each_kinds_settings_when_that_kind_is_chosen(staff):
    page = staff.get(reverse("admin:integrations_integration_add"))
    assert page.status_code == 200
    html = page.content.decode()
    form = page.context["adminform"].form
    for name, kind_class in KINDS.items():
        for spec in kind_class.settings:
            field = f"setting_{name}__{spec.name}"
            assert field in form.fields
            # unfold's conditional fields: the row shows only while the kind select says so.
            assert f'x-show="{escape(f"kind == {name!r}")}"' in html
    assert 'x-model.fill="kind"' in html


def test_adding_reads_only_the_chosen_kinds_settings(staff):
    add = reverse("admin:integrations_integration_add")
    data = form_data(staff.get(add), "integration_form")
    data.update({"kind": "loops", "name": "Loops app", "setting_retently__unknown_traits": "not-a-choice"})
    for name in list(data):
        if name.startswith("setting_") and not name.startswith("setting_loops__"):
            data[name] = "garbage"
    response = staff.post(add, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    integration = Integration.objects.get(name="Loops app")
    assert integration.kind == "loops"
    assert set(integration.settings) <= {spec.name for spec in KINDS["loops"].settings}


def test_a_bad_setting_of_the_chosen_kind_is_reported_on_its_field(staff):
    add = reverse("admin:integrations_integration_add")
    data = form_data(staff.get(add), "integration_form")
    data.update({"kind": "segment", "name": "Bad", "setting_segment__unknown_traits": "sometimes"})
    response = staff.post(add, data)
    assert response.status_code == 200
    assert "setting_segment__unknown_traits" in response.context["adminform"].form.errors
    assert not Integration.objects.filter(name="Bad").exists()


def test_rotation_asks_first_then_shows_the_new_key_once(staff):
    integration, old_key = make_integration("segment", name="Site")
    rotate = reverse("admin:integrations_integration_rotate_key", args=[integration.pk])
    ask = staff.get(rotate)
    assert ask.status_code == 200
    assert "Yes, rotate the key" in ask.content.decode()
    assert api_key_check(old_key) == integration  # asking changed nothing
    done = staff.post(rotate, {"confirm": "yes"})
    assert done["Location"] == reverse("admin:integrations_integration_key", args=[integration.pk])
    html = staff.get(done["Location"]).content.decode()
    new_key = html.split('id="sy-new-key">')[1].split("<")[0]
    assert api_key_check(old_key) is None
    assert api_key_check(new_key) == integration
    assert ApiKey.objects.filter(integration=integration, revoked_at__isnull=False).count() == 1


def test_the_change_page_has_the_rotate_and_inbox_buttons(staff):
    integration, _ = make_integration("segment", name="Site")
    html = staff.get(change_url(integration)).content.decode()
    assert reverse("admin:integrations_integration_rotate_key", args=[integration.pk]) in html
    assert reverse("admin:integrations_integration_open_inbox", args=[integration.pk]) in html


def test_outbound_integrations_have_no_key_to_rotate(staff):
    outbound, _ = make_integration("segment_source", write_key="wk")
    rotate = reverse("admin:integrations_integration_rotate_key", args=[outbound.pk])
    response = staff.post(rotate, {"confirm": "yes"}, follow=True)
    assert any("no inbound key" in t for t in messages_of(response))
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


def test_change_page_draws_the_usage_chart_with_axes(staff):
    integration, key = make_integration("segment")
    client = SegmentClient(key)
    client.post("/v1/batch", {"batch": [{"type": "track", "userId": "u", "event": "a"}, {"type": "track"}]})
    response = staff.get(change_url(integration))
    html = response.content.decode()
    canvas = html.split('<canvas class="chart"')[1].split(">")[0]
    options = json.loads(unescape(canvas.split('data-options="')[1].split('"')[0]))
    data = json.loads(unescape(canvas.split('data-value="')[1].split('"')[0]))
    assert options["scales"]["x"]["title"]["text"] == "UTC day"
    assert options["scales"]["y"]["title"]["display"] is True
    totals = {d["label"]: sum(d["data"]) for d in data["datasets"]}
    assert totals == {"Requests": 1, "Messages": 1, "Rejected": 1}
    assert len(data["labels"]) == 14


def test_change_page_health_links_each_count_to_its_filtered_list(staff):
    integration, key = make_integration("segment", name="Site")
    client = SegmentClient(key)
    client.post("/v1/track", {"userId": "u", "event": "a"})
    InboxMessage.objects.update(status="failed")
    html = staff.get(change_url(integration)).content.decode()
    inbox = reverse("admin:integrations_inboxmessage_changelist")
    assert f"{inbox}?integration__id__exact={integration.pk}&amp;status__exact=failed" in html
    health = html.split("sy-health")[1].split("</table>")[0]
    assert "Failed now" in health and ">1<" in health
    assert "ago" in health  # last received


def test_api_keys_inline_shows_state_and_when_the_working_key_was_last_used(staff):
    integration, key = make_integration("segment")
    html = staff.get(change_url(integration)).content.decode()
    assert "not yet" in html
    SegmentClient(key).post("/v1/track", {"userId": "u", "event": "a"})
    active = ApiKey.objects.get(integration=integration)
    used = key_last_used(active)
    assert used == InboxMessage.objects.get().received_at
    html = staff.get(change_url(integration)).content.decode()
    assert f"{used:%Y-%m-%d %H:%M:%S} UTC" in html
    staff.post(reverse("admin:integrations_integration_rotate_key", args=[integration.pk]), {"confirm": "yes"})
    html = staff.get(change_url(integration)).content.decode()
    inline = html.split("API keys")[1]
    assert inline.count(">revoked<") == 1 and inline.count(">active<") == 1
    # The revoked key keeps its last use; the new one has none yet.
    assert f"{used:%Y-%m-%d %H:%M:%S} UTC" in inline and "not yet" in inline
