"""Starting loops from Segment tracks and from the apps' own events."""

from __future__ import annotations

from datetime import timedelta

import pytest

from campaigns.loops.models import Enrolment, EnrolmentStatus
from campaigns.loops.stats import loop_totals
from contacts.models import ContactEvent
from contacts.services import contact_event_record
from tests.campaigns.loops.conftest import make_loop, sends
from tests.conftest import make_integration

pytestmark = pytest.mark.django_db


def test_a_track_starts_the_loop_with_its_first_step_due_after_the_event(frozen, template, identify, track):
    welcome = template()
    loop = make_loop(steps=[(60, welcome), (1440, template("Day 1"))])
    ada = identify("u1", firstName="Ada")
    event_at = frozen.now() - timedelta(minutes=10)

    track("User Registered", user_id="u1", timestamp=event_at, properties={"plan": "Pro Annual"})

    enrolment = Enrolment.objects.get()
    assert (enrolment.loop, enrolment.contact, enrolment.status) == (loop, ada, EnrolmentStatus.ACTIVE)
    [send] = sends()
    assert send.contact == ada and send.template == welcome
    assert send.due_at == event_at + timedelta(minutes=60)
    assert send.key == f"loop:{loop.pk}:enrolment:{enrolment.pk}:step:1"
    assert send.context["properties"] == {"plan": "Pro Annual"}
    assert send.context["name"] == "User Registered"
    assert loop_totals([loop.pk])[loop.pk]["started"] == 1


def test_a_disabled_loop_or_another_event_starts_nothing(template, identify, track):
    make_loop(steps=[(0, template())], enabled=False)
    make_loop(name="Other", steps=[(0, template("B"))], trigger=["Order Completed"])
    identify("u1")
    track("User Registered", user_id="u1")
    assert Enrolment.objects.count() == 0


def test_the_same_event_sent_twice_starts_once(frozen, template, identify, segment, drain):
    make_loop(steps=[(0, template())], reentry="every_time")
    identify("u1")
    client, _ = segment
    body = {"userId": "u1", "event": "User Registered", "messageId": "same-id", "timestamp": frozen.now().isoformat()}
    for _ in range(2):
        assert client.post("/v1/track", body).status_code == 200
        drain()
    assert Enrolment.objects.count() == 1
    assert len(sends()) == 1


def test_a_rerun_chunk_starts_nothing_new(frozen, template, identify, track):
    """A chunk applied again (a staff retry of processed rows) announces the same event ids."""
    from integrations.drain import apply_rows
    from integrations.models import InboxMessage

    make_loop(steps=[(0, template())], reentry="every_time")
    identify("u1")
    track(user_id="u1")
    rows = list(InboxMessage.objects.filter(type="track").select_related("integration"))
    apply_rows(rows)
    assert ContactEvent.objects.filter(name="User Registered").count() == 1
    assert Enrolment.objects.count() == 1
    assert len(sends()) == 1


def test_an_app_event_starts_a_loop_the_same_way(frozen, template, identify):
    loop = make_loop(steps=[(15, template())], trigger=["Survey Responded"])
    ada = identify("u1")
    event = contact_event_record(contact=ada, name="Survey Responded", properties={"score": 9})
    assert event.type == "internal"
    enrolment = Enrolment.objects.get()
    assert (enrolment.loop, enrolment.trigger_event_id) == (loop, event.pk)
    [send] = sends()
    assert send.context["properties"] == {"score": 9}
    assert send.due_at == event.timestamp + timedelta(minutes=15)


def test_the_loops_rule_a_track_without_a_contact_or_email_is_refused(template):
    from tests.kinds.conftest import apply, fixture

    make_loop(steps=[(0, template())])
    integration, _key = make_integration("loops")
    [row] = apply(integration, fixture("loops/track_unknown_without_email"))
    assert row.status == "refused" and "email" in row.reason
    assert Enrolment.objects.count() == 0


def test_a_loops_track_with_an_email_creates_the_contact_and_starts(template):
    from tests.kinds.conftest import apply, fixture

    make_loop(steps=[(0, template())])
    integration, _key = make_integration("loops")
    payload = fixture("loops/track_user_registered")
    payload["properties"]["email"] = "phil@example.com"
    [row] = apply(integration, payload)
    assert row.status == "processed"
    enrolment = Enrolment.objects.get()
    assert enrolment.contact == row.contact and enrolment.contact.email == "phil@example.com"
    assert sends()[0].context["properties"]["plan"] == "Pro Annual"


def test_audience_and_list_are_checked_at_the_trigger(template, identify, track):
    from tests.campaigns.loops.conftest import join_list

    news_owner = identify("u0")
    news = join_list(news_owner)
    make_loop(
        steps=[(0, template())],
        mailing_list=news,
        audience={"match": "all", "conditions": [{"property": "plan", "operator": "is", "value": "pro"}]},
    )
    pro_on_list = identify("u1", plan="pro")
    join_list(pro_on_list)
    identify("u2", plan="pro")  # not on the list
    free_on_list = identify("u3", plan="free")
    join_list(free_on_list)
    for user in ("u1", "u2", "u3"):
        track(user_id=user)
    assert [e.contact.user_id for e in Enrolment.objects.all()] == ["u1"]


def test_an_unsubscribed_contact_does_not_start(template, identify, track):
    make_loop(steps=[(0, template())])
    identify("u1", subscribed=False)
    track(user_id="u1")
    assert Enrolment.objects.count() == 0


def test_a_loop_without_steps_does_not_start(identify, track):
    make_loop(steps=[])
    identify("u1")
    track(user_id="u1")
    assert Enrolment.objects.count() == 0
