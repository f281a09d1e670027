"""The inbox and rejected-message admin: filters, search, payload, actions, no full count."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from common.admin_tools import COUNT_CAP, EstimatedCountPaginator
from integrations.models import InboxMessage, InboxStatus, RejectedMessage
from tests.conftest import SegmentClient, make_integration

INBOX = reverse("admin:integrations_inboxmessage_changelist")
REJECTED = reverse("admin:integrations_rejectedmessage_changelist")


@pytest.fixture
def inbox(db):
    web, web_key = make_integration("segment", name="Web")
    app, app_key = make_integration("segment", name="App")
    SegmentClient(web_key).post(
        "/v1/batch",
        {
            "batch": [
                {"type": "identify", "userId": "u1", "messageId": "id-1", "traits": {"email": "Ada@Example.com"}},
                {"type": "track", "userId": "u1", "messageId": "tr-1", "event": "<script>alert(1)</script>"},
            ]
        },
    )
    SegmentClient(app_key).post("/v1/page", {"userId": "u2", "messageId": "pg-1", "name": "Home"})
    return {"web": web, "app": app, "web_key": web_key}


def shown(response) -> set[str]:
    return {m.message_id for m in response.context["cl"].result_list}


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_filters(staff, inbox):
    InboxMessage.objects.filter(message_id="tr-1").update(status=InboxStatus.FAILED)
    assert shown(staff.get(INBOX, {"status": "failed"})) == {"tr-1"}
    assert shown(staff.get(INBOX, {"type": "page"})) == {"pg-1"}
    assert shown(staff.get(INBOX, {"integration__id__exact": inbox["web"].pk})) == {"id-1", "tr-1"}
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    assert shown(staff.get(INBOX, {"received_at__gte": str(midnight)})) == {"id-1", "tr-1", "pg-1"}
    assert shown(staff.get(INBOX, {"received_at__lt": str(midnight)})) == set()


@pytest.mark.parametrize(("term", "expected"), [("tr-1", {"tr-1"}), ("u2", {"pg-1"}), ("ADA@example.com", {"id-1"})])
def test_search_by_message_id_user_id_and_email(staff, inbox, term, expected):
    assert shown(staff.get(INBOX, {"q": term})) == expected


def test_payload_is_pretty_printed_and_escaped(staff, inbox):
    message = InboxMessage.objects.get(message_id="tr-1")
    html = staff.get(reverse("admin:integrations_inboxmessage_change", args=[message.pk])).content.decode()
    assert "&quot;event&quot;: &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;" in html
    assert "<script>alert(1)" not in html


def test_retry_puts_failed_and_skipped_rows_back_in_the_queue(staff, inbox):
    InboxMessage.objects.filter(message_id__in=["tr-1", "pg-1"]).update(
        status=InboxStatus.FAILED, next_attempt_at=None, reason="boom", attempts=5
    )
    InboxMessage.objects.filter(message_id="id-1").update(status=InboxStatus.PROCESSING)
    ids = list(InboxMessage.objects.values_list("pk", flat=True))
    response = staff.post(INBOX, {"action": "retry", "_selected_action": ids}, follow=True)
    assert "Queued 2 message(s) for another attempt." in messages_of(response)
    retried = InboxMessage.objects.filter(message_id__in=["tr-1", "pg-1"])
    assert {(m.status, m.reason, m.attempts) for m in retried} == {("pending", "", 0)}
    assert all(m.next_attempt_at is not None for m in retried)
    assert InboxMessage.objects.get(message_id="id-1").status == "processing"


def test_mark_skipped_leaves_finished_rows_alone(staff, inbox):
    InboxMessage.objects.filter(message_id="pg-1").update(status=InboxStatus.PROCESSED, next_attempt_at=None)
    ids = list(InboxMessage.objects.values_list("pk", flat=True))
    response = staff.post(INBOX, {"action": "mark_skipped", "_selected_action": ids}, follow=True)
    assert any(t.startswith("Marked 2 message(s) skipped.") for t in messages_of(response))
    skipped = InboxMessage.objects.filter(status="skipped")
    assert {m.message_id for m in skipped} == {"id-1", "tr-1"}
    assert {m.reason for m in skipped} == {"marked skipped by admin"}
    assert all(m.next_attempt_at is None for m in skipped)


def test_waiting_visitors_are_filtered_and_can_be_dismissed(staff, inbox):
    InboxMessage.objects.filter(message_id="pg-1").update(
        status=InboxStatus.WAITING, next_attempt_at=None, reason="anonymous visitor with no known contact"
    )
    assert shown(staff.get(INBOX, {"status": "waiting"})) == {"pg-1"}
    pk = InboxMessage.objects.get(message_id="pg-1").pk
    response = staff.post(INBOX, {"action": "mark_skipped", "_selected_action": [pk]}, follow=True)
    assert any(t.startswith("Marked 1 message(s) skipped.") for t in messages_of(response))
    assert InboxMessage.objects.get(pk=pk).status == "skipped"


def test_changelist_never_counts_the_whole_table(staff, inbox):
    with CaptureQueriesContext(connection) as queries:
        response = staff.get(INBOX)
    assert response.status_code == 200
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and "integrations_inboxmessage" in q["sql"]]
    assert counts, "the paginator still counts, but capped"
    assert all("LIMIT" in sql.upper() for sql in counts)


def test_paginator_is_exact_below_the_cap(inbox):
    paginator = EstimatedCountPaginator(InboxMessage.objects.order_by("pk"), 2)
    assert paginator.count == 3
    assert paginator.num_pages == 2
    assert COUNT_CAP >= 1000


def test_rejected_messages_show_their_body_and_filter_by_code(staff, inbox):
    client = SegmentClient(inbox["web_key"])
    client.post("/v1/track", b"{broken")
    client.post("/v1/track", {"userId": "u"})
    codes = set(RejectedMessage.objects.values_list("code", flat=True))
    assert len(codes) == 2
    code = RejectedMessage.objects.get(body__contains='"userId"').code
    response = staff.get(REJECTED, {"code": code})
    assert [r.code for r in response.context["cl"].result_list] == [code]
    rejected = RejectedMessage.objects.get(code=code)
    html = staff.get(reverse("admin:integrations_rejectedmessage_change", args=[rejected.pk])).content.decode()
    assert "&quot;userId&quot;" in html or '"userId"' in html


@pytest.mark.parametrize("term", ["²", "١٢", "99999999999999999999999", "  42  "])
def test_search_by_odd_numbers_is_not_a_500(staff, inbox, term):
    response = staff.get(INBOX, {"q": term})
    assert response.status_code == 200
    assert shown(response) == set()


@pytest.mark.parametrize("params", [{"q": "a\x00b"}, {"status": "\x00"}, {"x\x00": "1"}])
def test_a_nul_in_the_query_string_is_400_naming_the_parameter(staff, inbox, params):
    response = staff.get(INBOX, params)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_query"
    assert repr(next(iter(params)).replace("\x00", "\\u0000")) in body["message"]


# --- the list as staff read it, and the buttons on a message's page ---------------------------------
def test_list_rows_show_status_badge_type_event_reason_contact_and_a_short_id(staff, inbox):
    from integrations.drain import drain_inbox

    drain_inbox(max_seconds=30)
    InboxMessage.objects.filter(message_id="pg-1").update(status=InboxStatus.FAILED, reason="x" * 300)
    response = staff.get(INBOX)
    html = response.content.decode()
    # Failed is a red badge; processed a green one.
    assert "bg-red-100" in html and "bg-green-100" in html
    assert "track · <strong>&lt;script&gt;alert(1)&lt;/script&gt;</strong>" in html
    assert "x" * 55 + "…" in html and "x" * 57 not in html.split('title="')[0]
    ada = InboxMessage.objects.get(message_id="id-1")
    assert ada.contact_id is not None
    assert f'href="{reverse("admin:contacts_contact_change", args=[ada.contact_id])}"' in html
    assert 'title="tr-1"' in html  # the whole messageId on hover, a short one in the column


def test_a_capped_count_says_so(staff, inbox, monkeypatch):
    from common import admin_tools

    monkeypatch.setattr(admin_tools, "COUNT_CAP", 2)
    exact = staff.get(INBOX, {"type": "track"}).context["cl"].result_count
    assert (str(exact), exact.capped) == ("1", False)
    response = staff.get(INBOX, {"received_at__gte": "2000-01-01T00:00:00+00:00"})
    count = response.context["cl"].result_count
    assert str(count) == "2+" and count.capped
    assert "2+ inbox messages" in " ".join(response.content.decode().split())


def test_retry_button_asks_then_requeues(staff, inbox):
    message = InboxMessage.objects.get(message_id="tr-1")
    InboxMessage.objects.filter(pk=message.pk).update(status=InboxStatus.FAILED, reason="boom", attempts=5)
    change = reverse("admin:integrations_inboxmessage_change", args=[message.pk])
    retry = reverse("admin:integrations_inboxmessage_retry_one", args=[message.pk])
    assert retry in staff.get(change).content.decode()
    ask = staff.get(retry)
    assert "Yes, retry it" in ask.content.decode()
    assert InboxMessage.objects.get(pk=message.pk).status == "failed"
    done = staff.post(retry, {"confirm": "yes"}, follow=True)
    assert any("back to pending" in t for t in messages_of(done))
    assert (InboxMessage.objects.get(pk=message.pk).status, InboxMessage.objects.get(pk=message.pk).attempts) == (
        "pending",
        0,
    )


def test_skip_button_leaves_finished_messages_alone(staff, inbox):
    message = InboxMessage.objects.get(message_id="pg-1")
    skip = reverse("admin:integrations_inboxmessage_skip_one", args=[message.pk])
    done = staff.post(skip, {"confirm": "yes"}, follow=True)
    assert any("Marked skipped" in t for t in messages_of(done))
    row = InboxMessage.objects.get(pk=message.pk)
    assert (row.status, row.reason) == ("skipped", "marked skipped by admin")
    again = staff.post(skip, {"confirm": "yes"}, follow=True)
    assert any("left as it is" in t for t in messages_of(again))


@pytest.mark.parametrize("pk", ["999999", "abc"])
def test_buttons_on_a_missing_message_are_404(staff, inbox, pk):
    from django.urls import NoReverseMatch

    try:
        url = reverse("admin:integrations_inboxmessage_retry_one", args=[pk])
    except NoReverseMatch:
        return
    assert staff.post(url, {"confirm": "yes"}).status_code == 404
