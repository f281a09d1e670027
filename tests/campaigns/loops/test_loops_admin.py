"""The loops admin: the loop with its steps, figures and chart, the dry run, enrolments, and each
contact's enrolments on the contact page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from campaigns.loops.models import Enrolment, Loop, LoopStep
from tests.campaigns.loops.conftest import join_list, make_loop, run_sends
from tests.test_admin_support import form_data

pytestmark = pytest.mark.django_db


def test_pages_load(staff, frozen, template, identify, track):
    loop = make_loop(steps=[(0, template())])
    ada = identify("u1")
    track(user_id="u1")
    run_sends()
    enrolment = Enrolment.objects.get()
    for url in (
        reverse("admin:campaigns_loop_changelist"),
        reverse("admin:campaigns_loop_add"),
        reverse("admin:campaigns_loop_change", args=[loop.pk]),
        reverse("admin:campaigns_enrolment_changelist"),
        reverse("admin:campaigns_enrolment_changelist") + f"?loop__id__exact={loop.pk}&status__exact=completed",
        reverse("admin:campaigns_enrolment_changelist") + "?q=u1@example.com",
        reverse("admin:campaigns_enrolment_change", args=[enrolment.pk]),
        reverse("admin:contacts_contact_change", args=[ada.pk]),
    ):
        response = staff.get(url)
        assert response.status_code == 200, url


def test_the_changelist_shows_each_loops_figures_without_a_query_per_loop(
    staff, frozen, template, identify, track, django_assert_max_num_queries
):
    welcome = template()
    first = make_loop(name="First", steps=[(0, welcome)])
    for n in range(10):
        make_loop(name=f"Loop {n}", steps=[(0, welcome)], trigger=[f"Event {n}"])
    identify("u1")
    track(user_id="u1")
    run_sends()
    with django_assert_max_num_queries(12):
        html = staff.get(reverse("admin:campaigns_loop_changelist")).content.decode()
    assert "First" in html and "Loop 9" in html
    row = html[html.index(reverse("admin:campaigns_loop_change", args=[first.pk])) :]
    assert ">1<" in row.split("</tr>")[0]  # started and emailed


def test_the_change_page_has_the_figures_and_the_chart(staff, frozen, template, identify, track):
    loop = make_loop(steps=[(0, template())])
    identify("u1")
    track(user_id="u1")
    html = staff.get(reverse("admin:campaigns_loop_change", args=[loop.pk])).content.decode()
    assert 'id="sy-loop-figures"' in html
    assert 'data-type="bar"' in html
    assert "started 1" in html


def test_staff_create_a_loop_with_steps(staff, template):
    welcome = template()
    page = staff.get(reverse("admin:campaigns_loop_add"))
    data = form_data(page, "loop_form")
    data.update(
        {
            "name": "Onboarding",
            "enabled": "on",
            "trigger_events": "User Registered\nSurvey Responded",
            "exit_events": "Order Completed",
            "reentry": "once",
            "audience": '{"match": "any", "conditions": [{"property": "plan", "operator": "is", "value": "pro"}]}',
            "late_policy": "send",
            "steps-0-position": "1",
            "steps-0-delay_value": "2",
            "steps-0-delay_unit": "hours",
            "steps-0-template": str(welcome.pk),
        }
    )
    response = staff.post(reverse("admin:campaigns_loop_add"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    loop = Loop.objects.get(name="Onboarding")
    assert loop.trigger_events == ["User Registered", "Survey Responded"]
    assert loop.audience["match"] == "any"
    assert [(s.position, s.delay_minutes) for s in LoopStep.objects.filter(loop=loop)] == [(1, 120)]


def test_a_bad_audience_is_refused_in_the_form_naming_the_condition(staff, template):
    page = staff.get(reverse("admin:campaigns_loop_add"))
    data = form_data(page, "loop_form")
    data.update(
        {
            "name": "Bad",
            "trigger_events": "User Registered",
            "reentry": "once",
            "late_policy": "send",
            "audience": '{"conditions": [{"property": "plan", "operator": "nearly", "value": "pro"}]}',
        }
    )
    response = staff.post(reverse("admin:campaigns_loop_add"), data)
    assert response.status_code == 200
    assert "condition 1 (plan): operator &#x27;nearly&#x27;" in response.content.decode()
    assert not Loop.objects.exists()


def test_the_dry_run_shows_which_events_would_start_the_loop_and_why_not(staff, frozen, template, identify, track):
    ada = identify("u1", plan="pro")
    join_list(ada)
    identify("u2", plan="free")
    grace = identify("u3", plan="pro")
    for user in ("u1", "u2", "u3", "u1"):
        track(user_id=user)
        frozen.advance(minutes=1)
    loop = make_loop(
        steps=[(0, template())],
        enabled=False,
        audience={"match": "all", "conditions": [{"property": "plan", "operator": "is", "value": "pro"}]},
    )
    del grace
    url = reverse("admin:campaigns_loop_dry_run", args=[loop.pk])
    html = staff.get(url + "?n=10").content.decode()
    assert "The loop is disabled" in html
    rows = html[html.index('id="sy-dry-run-rows"') :].split("<tr")[2:]
    assert len(rows) == 4
    newest_first = [(("u1" if "u1@" in r else "u2" if "u2@" in r else "u3"), "sy-starts" in r) for r in rows]
    assert newest_first == [("u1", False), ("u3", True), ("u2", False), ("u1", True)]
    assert "re-entry: once" in rows[0]
    assert "fails condition 1 (plan is &#x27;pro&#x27;)" in rows[2]
    assert not Enrolment.objects.exists()  # nothing is written

    # Only the last N events.
    html = staff.get(url + "?n=2").content.decode()
    assert len(html[html.index('id="sy-dry-run-rows"') :].split("<tr")[2:]) == 2


def test_the_contact_page_lists_enrolments_with_the_next_due_step(staff, frozen, template, identify, track):
    make_loop(name="Welcome series", steps=[(0, template("One")), (1440, template("Two"))])
    ada = identify("u1")
    track(user_id="u1")
    run_sends()
    due = frozen.now() + timedelta(days=1)
    html = staff.get(reverse("admin:contacts_contact_change", args=[ada.pk])).content.decode()
    assert "loop enrolments" in html.lower()
    assert "Welcome series" in html
    assert f"step 2, due {due:%Y-%m-%d %H:%M} UTC" in html


def test_exit_action_stops_enrolments(staff, frozen, template, identify, track):
    make_loop(steps=[(60, template())])
    identify("u1")
    track(user_id="u1")
    enrolment = Enrolment.objects.get()
    response = staff.post(
        reverse("admin:campaigns_enrolment_changelist"), {"action": "exit", "_selected_action": [enrolment.pk]}
    )
    assert response.status_code == 302
    enrolment.refresh_from_db()
    assert enrolment.status == "exited"
    frozen.advance(hours=2)
    run_sends()
    from campaigns.email.models import EmailSend

    assert EmailSend.objects.get().status == "skipped"
