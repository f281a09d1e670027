"""/api/v1/loops/ as CONTRACT.md sets it: exactly its fields, nested steps, read-only stats, and
a 400 naming the field for bad input."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from campaigns.loops.models import Enrolment, Loop, LoopStep
from contacts.models import MailingList
from tests.campaigns.loops.conftest import make_loop, run_sends, sends

pytestmark = pytest.mark.django_db

FIELDS = {
    "id",
    "name",
    "enabled",
    "trigger_events",
    "exit_events",
    "reentry",
    "reentry_days",
    "mailing_list",
    "audience",
    "steps",
    "stats",
}


@pytest.fixture
def api(db):
    from tests.test_admin_support import make_superuser

    client = APIClient()
    client.force_authenticate(make_superuser())
    return client


def body(template, **overrides):
    return {
        "name": "Welcome",
        "enabled": True,
        "trigger_events": ["User Registered"],
        "exit_events": ["Order Completed"],
        "reentry": "after_days",
        "reentry_days": 30,
        "mailing_list": None,
        "audience": {"match": "all", "conditions": [{"property": "plan", "operator": "is", "value": "pro"}]},
        "steps": [{"delay_minutes": 0, "template": template.pk}, {"delay_minutes": 1440, "template": template.pk}],
        **overrides,
    }


def test_create_read_update_delete(api, template):
    welcome = template()
    MailingList.objects.create(list_id="news", name="News")
    response = api.post("/api/v1/loops/", body(welcome, mailing_list="news"), format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert set(data) == FIELDS
    assert data["steps"] == [
        {"delay_minutes": 0, "template": welcome.pk},
        {"delay_minutes": 1440, "template": welcome.pk},
    ]
    assert data["stats"] == {"started": 0, "emailed": 0, "exited": 0, "unsubscribed": 0}
    assert data["mailing_list"] == "news" and data["reentry_days"] == 30
    loop = Loop.objects.get(pk=data["id"])
    assert [(s.delay_value, s.delay_unit) for s in loop.steps.all()] == [(0, "minutes"), (1, "days")]

    listed = api.get("/api/v1/loops/").json()
    assert listed["count"] == 1 and listed["results"][0] == data

    changed = api.patch(
        f"/api/v1/loops/{loop.pk}/",
        {"steps": [{"delay_minutes": 90, "template": welcome.pk}], "reentry": "once", "stats": {"started": 99}},
        format="json",
    ).json()
    assert changed["steps"] == [{"delay_minutes": 90, "template": welcome.pk}]
    assert changed["reentry"] == "once" and changed["reentry_days"] is None
    assert changed["stats"]["started"] == 0  # read-only
    assert LoopStep.objects.filter(loop=loop).count() == 1

    assert api.delete(f"/api/v1/loops/{loop.pk}/").status_code == 204
    assert not Loop.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"reentry_days": None}, "reentry_days", "reentry_days is required"),
        ({"exit_events": ["User Registered"]}, "exit_events", "cannot both start and exit"),
        ({"trigger_events": "User Registered"}, "trigger_events", "list"),
        ({"trigger_events": [""]}, "trigger_events", "non-empty"),
        ({"trigger_events": []}, "trigger_events", "at least one trigger event"),
        ({"steps": []}, "steps", "at least one step"),
        ({"steps": [{"delay_minutes": -5, "template": 1}]}, "steps", ""),
        ({"mailing_list": "nope"}, "mailing_list", ""),
        ({"reentry": "sometimes"}, "reentry", ""),
        (
            {"audience": {"conditions": [{"property": "plan", "operator": "like", "value": "x"}]}},
            "audience",
            "condition 1 (plan): operator 'like'",
        ),
    ],
)
def test_bad_input_gets_a_400_naming_the_field(api, template, overrides, field, message):
    response = api.post("/api/v1/loops/", body(template(), **overrides), format="json")
    assert response.status_code == 400
    errors = response.json()
    assert field in errors, errors
    assert message in str(errors[field])


def test_steps_need_existing_templates(api, template):
    response = api.post(
        "/api/v1/loops/", body(template(), steps=[{"delay_minutes": 0, "template": 999}]), format="json"
    )
    assert response.status_code == 400 and "steps" in response.json()


def test_stats_count_what_happened(api, frozen, template, identify, track):
    loop = make_loop(steps=[(0, template("One")), (60, template("Two"))], exits=["Order Completed"])
    identify("u1")
    identify("u2")
    track(user_id="u1")
    track(user_id="u2")
    run_sends()
    track("Order Completed", user_id="u2")
    stats = api.get(f"/api/v1/loops/{loop.pk}/").json()["stats"]
    assert stats == {"started": 2, "emailed": 2, "exited": 1, "unsubscribed": 0}
    assert Enrolment.objects.count() == 2
    assert [s.status for s in sends(key__endswith=":step:2")] == ["scheduled", "skipped"]


def test_the_list_reads_every_loops_stats_in_a_fixed_number_of_queries(api, template, django_assert_max_num_queries):
    welcome = template()
    for n in range(12):
        make_loop(name=f"Loop {n}", steps=[(0, welcome)])
    with django_assert_max_num_queries(8):
        response = api.get("/api/v1/loops/")
    assert response.json()["count"] == 12


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
LOOP_FIELDS = sorted(FIELDS - {"id", "stats"})


def field_values():
    """Each field from hostile JSON, or a near miss of what it expects."""
    near = {
        "trigger_events": st.lists(st.text(max_size=300), max_size=3),
        "audience": st.fixed_dictionaries(
            {
                "match": st.sampled_from(["all", "any", "most"]),
                "conditions": st.lists(
                    st.fixed_dictionaries(
                        {
                            "property": st.sampled_from(["plan", "email", "bad name", "", "x" * 120]),
                            "operator": st.sampled_from(["is", "gt", "before", "is_set", "like"]),
                            "value": json_values,
                        }
                    ),
                    max_size=6,
                ),
            }
        ),
        "steps": st.lists(st.fixed_dictionaries({"delay_minutes": json_values, "template": json_values}), max_size=3),
    }
    return st.fixed_dictionaries(
        {}, optional={name: (near[name] | json_values) if name in near else json_values for name in LOOP_FIELDS}
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=field_values())
def test_hostile_bodies_get_a_4xx_never_a_5xx(api, data):
    response = api.post("/api/v1/loops/", data, format="json")
    assert response.status_code in (201, 400), (response.status_code, data)
    if response.status_code == 400:
        assert set(response.json()) <= set(FIELDS) | {"non_field_errors"}
    loop = Loop.objects.first() or Loop.objects.create(name="target")
    response = api.patch(f"/api/v1/loops/{loop.pk}/", data, format="json")
    assert response.status_code in (200, 400), (response.status_code, data)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Wel\x00come"),
        ("trigger_events", ["User\x00Registered"]),
        ("exit_events", ["Done\x00"]),
        ("audience", {"conditions": [{"property": "plan", "operator": "is", "value": "pr\x00o"}]}),
    ],
)
def test_nul_characters_are_refused_naming_the_field(api, template, field, value):
    response = api.post("/api/v1/loops/", body(template(), **{field: value}), format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_a_patched_step_without_its_delay_or_template_is_a_400_naming_it(api, template):
    """A PATCH validates partially, steps included; a step missing a field once answered 500."""
    welcome = template()
    loop = api.post("/api/v1/loops/", body(welcome), format="json").json()
    response = api.patch(f"/api/v1/loops/{loop['id']}/", {"steps": [{"template": welcome.pk}]}, format="json")
    assert response.status_code == 400, response.content
    assert "delay_minutes" in str(response.json()["steps"])
    response = api.patch(f"/api/v1/loops/{loop['id']}/", {"steps": [{"delay_minutes": 5}]}, format="json")
    assert response.status_code == 400, response.content
    assert "template" in str(response.json()["steps"])


def test_a_list_id_with_a_nul_character_is_a_400_naming_the_field(api):
    response = api.post("/api/v1/loops/", {"name": "L", "mailing_list": "news\x00"}, format="json")
    assert response.status_code == 400, response.content
    assert "mailing_list" in response.json()
