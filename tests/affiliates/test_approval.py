"""Approving and denying conversions (staff, and an offer's auto-approval on a controllable
clock), what an approval announces (the signal for the outbound side, the internal event loops
start from), and affiliate status actions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.management import call_command

from affiliates.models import Conversion
from affiliates.services import affiliates_set_status, conversions_approve, conversions_deny
from affiliates.signals import conversion_approved
from contacts.models import Contact, ContactEvent
from contacts.signals import events_recorded
from tests.affiliates.conftest import apply, make_affiliate, make_offer, track

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def received():
    got = {"approved": [], "events": []}

    def on_approved(sender, conversions, **kwargs):
        got["approved"].extend(conversions)

    def on_events(sender, events, **kwargs):
        got["events"].extend(e for e in events if e.source == "internal")

    conversion_approved.connect(on_approved, dispatch_uid="test-approved")
    events_recorded.connect(on_events, dispatch_uid="test-events")
    yield got
    conversion_approved.disconnect(dispatch_uid="test-approved")
    events_recorded.disconnect(dispatch_uid="test-events")


def conversion(affiliate, order_id="o-1", **fields) -> Conversion:
    values = {
        "affiliate": affiliate,
        "offer": affiliate.offer,
        "order_id": order_id,
        "amount": Decimal("200"),
        "currency": "EUR",
        "commission": Decimal("20"),
        "order_at": T0,
        "created_at": T0,
    }
    values.update(fields)
    return Conversion.objects.create(**values)


def test_approving_announces_the_conversion_and_records_the_internal_event(db, received):
    contact = Contact.objects.create(email="aff@example.com", user_id="aff-1")
    affiliate = make_affiliate("PETER", offer=make_offer(), contact=contact, user_id="aff-1")
    pending = conversion(affiliate)
    with time_machine.travel(T0 + timedelta(days=2), tick=False):
        result = conversions_approve(ids=[pending.pk], actor="admin:staff")
    assert result.text("Approved") == "Approved 1 conversion(s)."
    pending.refresh_from_db()
    assert (pending.status, pending.approved_at, pending.decided_by) == (
        "approved",
        T0 + timedelta(days=2),
        "admin:staff",
    )
    (record,) = received["approved"]
    assert (record.conversion_id, record.order_id, record.commission, record.currency) == (
        pending.pk,
        "o-1",
        Decimal("20"),
        "EUR",
    )
    assert (record.referral_code, record.contact_id, record.approved_by) == ("PETER", contact.pk, "admin:staff")
    event = ContactEvent.objects.get(contact=contact)
    assert (event.name, event.type) == ("Affiliate Conversion Approved", "internal")
    assert event.properties == {
        "conversion_id": pending.pk,
        "order_id": "o-1",
        "affiliate_id": affiliate.pk,
        "referral_code": "PETER",
        "revenue": 200.0,
        "currency": "EUR",
        "commission": 20.0,
    }
    assert record.event_id == event.pk
    assert [e.name for e in received["events"]] == ["Affiliate Conversion Approved"]
    # Approved once: a second approval does nothing and says why.
    again = conversions_approve(ids=[pending.pk], actor="admin:staff")
    assert again.text("Approved") == (
        "Approved 0 conversion(s); 1 not: only a pending conversion can be approved; approved ones cannot."
    )
    assert len(received["approved"]) == 1


def test_an_affiliate_without_a_contact_is_still_announced(db, received):
    affiliate = make_affiliate("PETER", offer=make_offer())
    conversions_approve(ids=[conversion(affiliate).pk], actor="api:staff")
    (record,) = received["approved"]
    assert (record.contact_id, record.event_id) == (None, None)
    assert not ContactEvent.objects.exists()


def test_approved_conversions_cannot_be_denied_only_reversed_by_a_refund(segment_kind, received):
    affiliate = make_affiliate("PETER", offer=make_offer())
    approved = conversion(affiliate, status="approved")
    result = conversions_deny(ids=[approved.pk], actor="admin:staff")
    assert result.text("Denied") == (
        "Denied 0 conversion(s); 1 not: approved conversions cannot be denied; only a refund reverses them."
    )
    approved.refresh_from_db()
    assert approved.status == "approved"
    apply(
        segment_kind,
        track("Order Refunded", {"order_id": "o-1"}, message_id="r", user_id="b", ts="2024-05-09T00:00:00Z"),
    )
    approved.refresh_from_db()
    assert (approved.status, approved.commission) == ("reversed", Decimal("0"))


def test_denying_a_pending_conversion(db):
    affiliate = make_affiliate("PETER", offer=make_offer())
    pending = conversion(affiliate)
    assert conversions_deny(ids=[pending.pk], actor="admin:staff").text("Denied") == "Denied 1 conversion(s)."
    pending.refresh_from_db()
    assert (pending.status, pending.reason) == ("denied", "denied by admin:staff")
    assert conversions_approve(ids=[pending.pk], actor="x").done == []


# --- auto-approval -------------------------------------------------------------------------------------
def test_auto_approval_after_the_offers_days_on_a_controllable_clock(db, received):
    auto = make_offer(name="Auto", auto_approve_days=14)
    manual = make_offer(name="Manual")
    peter = make_affiliate("PETER", offer=auto)
    pending_affiliate = make_affiliate("NEWBIE", email="new@example.com", offer=auto, status="pending")
    due = conversion(peter, "o-due")
    refunded = conversion(peter, "o-refunded", status="reversed", commission=0)
    waiting = conversion(pending_affiliate, "o-waiting")
    by_hand = conversion(make_affiliate("HAND", email="h@example.com", offer=manual), "o-hand")
    from common.workqueue.run import run_due

    with time_machine.travel(T0 + timedelta(days=13, hours=23), tick=False):
        assert run_due(types=["affiliates"])["affiliates"] == {"approved": 0}
    due.refresh_from_db()
    assert due.status == "pending"
    with time_machine.travel(T0 + timedelta(days=14), tick=False):
        assert run_due(types=["affiliates"])["affiliates"] == {"approved": 1}
    for row in (due, refunded, waiting, by_hand):
        row.refresh_from_db()
    assert (due.status, due.decided_by, due.approved_at) == ("approved", "auto-approval", T0 + timedelta(days=14))
    assert (refunded.status, waiting.status, by_hand.status) == ("reversed", "pending", "pending")
    assert [r.order_id for r in received["approved"]] == ["o-due"]
    # The affiliate is approved later: their conversion follows on the next run.
    affiliates_set_status(affiliates=[pending_affiliate], status="active", actor="admin:staff")
    with time_machine.travel(T0 + timedelta(days=20), tick=False):
        call_command("process_due", "--type", "affiliates", stdout=open("/dev/null", "w"))  # noqa: SIM115
    waiting.refresh_from_db()
    assert waiting.status == "approved"


# --- affiliate status actions ------------------------------------------------------------------------------
def test_status_actions_move_only_from_their_statuses_and_say_what_they_did(db):
    offer = make_offer()
    pending = make_affiliate("A1", email="a1@example.com", offer=offer, status="pending")
    active = make_affiliate("A2", email="a2@example.com", offer=offer, status="active")
    denied = make_affiliate("A3", email="a3@example.com", offer=offer, status="denied")
    result = affiliates_set_status(affiliates=[pending, active, denied], status="denied", actor="admin:staff")
    assert result.text("Denied") == "Denied 1 affiliate(s); 1 left as they were (active); 1 left as they were (denied)."
    result = affiliates_set_status(affiliates=[pending, active, denied], status="active", actor="admin:staff")
    assert result.text("Approved") == "Approved 2 affiliate(s); 1 left as they were (active)."
    result = affiliates_set_status(affiliates=[pending, active, denied], status="disabled", actor="admin:staff")
    assert result.text("Disabled") == "Disabled 3 affiliate(s)."
