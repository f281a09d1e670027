"""The contacts admin: search, filters, properties, timeline, actions, CSV export and upload."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from contacts.models import (
    AudienceMembership,
    Contact,
    ContactChange,
    ContactEvent,
    ErasureRecord,
    ListMembership,
    MailingList,
    PropertyDefinition,
    Suppression,
)
from contacts.services import contact_unsubscribe, email_md5
from integrations.models import InboxMessage
from tests.conftest import make_integration
from tests.test_admin_support import form_data, populate

CONTACTS = reverse("admin:contacts_contact_changelist")
SUPPRESSIONS = reverse("admin:contacts_suppression_changelist")
UPLOAD = reverse("admin:contacts_suppression_upload")


@pytest.fixture
def world(db):
    return populate()


def shown(response) -> set[str]:
    return {str(c) for c in response.context["cl"].result_list}


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("ada@example.com", {"ada@example.com"}),
        ("ADA@", {"ada@example.com"}),
        ("u2", {"bob@example.com"}),
        ("lovelace", {"ada@example.com"}),
        ("Ada", {"ada@example.com"}),
        ("ada lovelace", {"ada@example.com"}),
        ("nobody", set()),
    ],
)
def test_search(staff, world, term, expected):
    assert shown(staff.get(CONTACTS, {"q": term})) == expected


def test_filters(staff, world):
    news = MailingList.objects.get(list_id="news")
    Contact.objects.filter(user_id="u2").update(subscribed=False)
    assert shown(staff.get(CONTACTS, {"subscribed__exact": "0"})) == {"bob@example.com"}
    assert shown(staff.get(CONTACTS, {"list": news.pk})) == {"ada@example.com"}
    assert shown(staff.get(CONTACTS, {"audience": "big_spenders"})) == {"ada@example.com"}
    assert shown(staff.get(CONTACTS, {"has_property": "plan"})) == {"ada@example.com"}
    page = staff.get(CONTACTS).content.decode()
    for choice in ("?list=", "?audience=big_spenders", "?has_property=plan"):
        assert choice in page


def test_changelist_queries_do_not_grow_with_rows_and_never_count_everything(staff, world):
    staff.get(CONTACTS)
    with CaptureQueriesContext(connection) as few:
        staff.get(CONTACTS)
    now = timezone.now()
    Contact.objects.bulk_create(
        [
            Contact(email=f"c{n}@example.com", created_at=now, updated_at=now, source=world["integration"])
            for n in range(30)
        ]
    )
    with CaptureQueriesContext(connection) as many:
        staff.get(CONTACTS)
    assert len(many) == len(few)
    counts = [q["sql"] for q in many if "COUNT(" in q["sql"].upper() and '"contacts_contact"' in q["sql"]]
    assert counts and all("LIMIT" in sql.upper() for sql in counts)


def test_change_page_shows_properties_timeline_and_memberships(staff, world):
    ada = world["ada"]
    response = staff.get(reverse("admin:contacts_contact_change", args=[ada.pk]))
    html = response.content.decode()
    form = response.context["adminform"].form
    assert form["prop__plan"].value() == "pro"
    assert 'name="prop__plan"' in html
    assert "Signed Up" in html
    assert f"?contact__id__exact={ada.pk}" in html
    assert "Newsletter" in html
    assert "big_spenders" in html
    events = staff.get(reverse("admin:contacts_contactevent_changelist"), {"contact__id__exact": ada.pk})
    assert [e.name for e in events.context["cl"].result_list] == ["Signed Up"]


def test_timeline_pages_through_events_and_changes_newest_first(staff, world):
    ada = world["ada"]
    now = timezone.now()
    ContactEvent.objects.bulk_create(
        [
            ContactEvent(contact=ada, name=f"Step {n:02d}", timestamp=now + timezone.timedelta(seconds=n))
            for n in range(30)
        ]
    )
    url = reverse("admin:contacts_contact_change", args=[ada.pk])
    html = staff.get(url).content.decode()
    assert "Step 29" in html and "Step 05" in html
    assert "Step 04" not in html
    assert "?timeline=2#timeline" in html
    assert "All events of this contact" in html
    older = staff.get(url, {"timeline": 2}).content.decode()
    assert "Step 04" in older and "Step 00" in older and "Step 05" not in older
    # The changes the later identify made are on page 2 too, each linked to its inbox row.
    identify = InboxMessage.objects.get(message_id="m-identify-3")
    assert "Analytical Engines" in older
    assert reverse("admin:integrations_inboxmessage_change", args=[identify.pk]) in older


def test_timeline_shows_old_and_new_values_with_their_inbox_row(staff, world):
    ada = world["ada"]
    html = staff.get(reverse("admin:contacts_contact_change", args=[ada.pk])).content.decode()
    timeline = html.split('id="sy-timeline"')[1].split("</table>")[0]
    identify = InboxMessage.objects.get(message_id="m-identify-3")
    assert "company" in timeline and "Analytical Engines" in timeline
    assert f"inbox #{identify.pk}" in timeline
    track = InboxMessage.objects.get(message_id="m-track-1")
    assert f"inbox #{track.pk}" in timeline and "Signed Up" in timeline


@pytest.mark.parametrize("page", ["abc", "-3", "99999999999999999999"])
def test_an_odd_timeline_page_is_not_a_500(staff, world, page):
    url = reverse("admin:contacts_contact_change", args=[world["ada"].pk])
    assert staff.get(url, {"timeline": page}).status_code == 200


def test_editing_a_contact_lowercases_the_email(staff, world):
    ada = world["ada"]
    url = reverse("admin:contacts_contact_change", args=[ada.pk])
    data = form_data(staff.get(url), "contact_form")
    data["email"] = "Ada.L@Example.com"
    response = staff.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    ada.refresh_from_db()
    assert ada.email == "ada.l@example.com"
    assert ListMembership.objects.filter(contact=ada, subscribed=True).count() == 1


def test_unsubscribe_action_reports_and_suppresses(staff, world):
    ids = list(Contact.objects.filter(user_id__in=["u1", "u2"]).values_list("pk", flat=True))
    Contact.objects.filter(user_id="u2").update(subscribed=False)
    response = staff.post(CONTACTS, {"action": "unsubscribe", "_selected_action": ids}, follow=True)
    assert any(t.startswith("Unsubscribed 1 contact(s)") for t in messages_of(response))
    assert not Contact.objects.filter(pk__in=ids, subscribed=True).exists()
    assert Suppression.objects.filter(email_md5=email_md5("ada@example.com"), reason="unsubscribed").exists()


def test_erase_asks_first_then_erases_and_suppresses(staff, world):
    ada = world["ada"]
    ask = staff.post(CONTACTS, {"action": "erase", "_selected_action": [ada.pk]})
    assert ask.status_code == 200
    assert "Yes, erase them" in ask.content.decode()
    assert Contact.objects.filter(pk=ada.pk).exists()
    done = staff.post(CONTACTS, {"action": "erase", "_selected_action": [ada.pk], "confirm": "yes"}, follow=True)
    assert any(t.startswith("Erased 1 contact(s) and 1 event(s)") for t in messages_of(done))
    assert not Contact.objects.filter(pk=ada.pk).exists()
    record = ErasureRecord.objects.get(contact_pk=ada.pk)
    assert record.requested_by == "admin:admin"
    assert Suppression.objects.filter(email_md5=email_md5("ada@example.com"), reason="erased").exists()
    assert Suppression.objects.filter(user_id="u1", reason="erased").exists()


def test_export_csv(staff, world):
    ids = list(Contact.objects.filter(user_id__in=["u1", "u2"]).values_list("pk", flat=True))
    response = staff.post(CONTACTS, {"action": "export_csv", "_selected_action": ids})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    by_email = {r["email"]: r for r in rows}
    assert set(by_email) == {"ada@example.com", "bob@example.com"}
    assert by_email["ada@example.com"]["mailing_lists"] == "news"
    # A column per defined property, empty where the contact has none.
    assert by_email["ada@example.com"]["plan"] == "pro"
    assert by_email["ada@example.com"]["company"] == "Analytical Engines"
    assert by_email["bob@example.com"]["plan"] == ""
    assert by_email["bob@example.com"]["user_id"] == "u2"


def upload(staff, content: str, **extra):
    file = SimpleUploadedFile("list.csv", content.encode(), content_type="text/csv")
    return staff.post(UPLOAD, {"file": file, "reason": "uploaded", **extra}, follow=True)


def test_csv_upload_of_emails_is_idempotent(staff, db):
    response = upload(staff, "name,email\nA,One@Example.com\nB,two@example.com\nC,one@example.com\n")
    assert "Read 2 distinct address(es): 2 new suppression(s), 0 already suppressed." in messages_of(response)
    assert Suppression.objects.filter(email_md5=email_md5("one@example.com")).exists()
    assert Suppression.objects.get(email_md5=email_md5("two@example.com")).email == ""
    again = upload(staff, "email\none@example.com\nthree@example.com\n", keep_plain="on")
    assert "Read 2 distinct address(es): 1 new suppression(s), 1 already suppressed." in messages_of(again)
    assert Suppression.objects.get(email_md5=email_md5("three@example.com")).email == "three@example.com"


def test_csv_upload_of_md5s_without_header_reports_bad_rows(staff, db):
    digest = email_md5("x@example.com")
    response = upload(staff, f"{digest.upper()}\nnot-an-address\ny@example.com\n")
    assert any("2 new suppression(s)" in t and "1 row(s) skipped" in t for t in messages_of(response))
    assert Suppression.objects.filter(email_md5=digest, reason="uploaded").exists()


def test_upload_page_and_button(staff, db):
    assert "Upload CSV" in staff.get(SUPPRESSIONS).content.decode()
    page = staff.get(UPLOAD)
    assert page.status_code == 200
    assert "a column named email" in page.content.decode()


def test_suppression_search_by_email_finds_the_md5(staff, db):
    upload(staff, "email\nfind.me@example.com\n")
    response = staff.get(SUPPRESSIONS, {"q": "Find.Me@example.com"})
    assert [s.email_md5 for s in response.context["cl"].result_list] == [email_md5("find.me@example.com")]


def test_adding_a_suppression_by_email_stores_the_md5(staff, db):
    response = staff.post(
        reverse("admin:contacts_suppression_add"),
        {"email": "Someone@Example.com", "email_md5": "", "user_id": "", "reason": "bounced", "note": ""},
    )
    assert response.status_code == 302
    row = Suppression.objects.get()
    assert (row.email_md5, row.email, row.user_id) == (email_md5("someone@example.com"), "someone@example.com", None)


def test_mailing_list_member_counts_in_one_query(staff, world):
    url = reverse("admin:contacts_mailinglist_changelist")
    staff.get(url)
    with CaptureQueriesContext(connection) as few:
        response = staff.get(url)
    assert "1</a>" in response.content.decode()
    MailingList.objects.bulk_create([MailingList(list_id=f"l{n}", name=f"List {n}") for n in range(10)])
    with CaptureQueriesContext(connection) as many:
        staff.get(url)
    assert len(many) == len(few)


def test_property_definition_name_and_type_are_fixed_once_made(staff, world):
    plan = PropertyDefinition.objects.get(name="plan")
    response = staff.get(reverse("admin:contacts_propertydefinition_change", args=[plan.pk]))
    assert "name" not in response.context["adminform"].form.fields
    add = staff.post(
        reverse("admin:contacts_propertydefinition_add"), {"name": "Bad Name", "type": "text", "description": ""}
    )
    assert "name" in add.context["adminform"].form.errors


def test_audience_rows_are_read_only(staff, world):
    assert AudienceMembership.objects.count() == 1
    html = staff.get(reverse("admin:contacts_contact_change", args=[world["ada"].pk])).content.decode()
    assert 'name="audiences-0-key"' not in html


@pytest.mark.parametrize("value", ["²", "99999999999999999999999", "abc"])
def test_list_filter_with_an_odd_id_shows_everyone_not_a_500(staff, value):
    Contact.objects.create(user_id="u1")
    response = staff.get(CONTACTS, {"list": value})
    assert response.status_code == 200


# --- the list: last seen, events, source and date filters, domain search -----------------------------
def test_list_shows_last_seen_and_events_count_in_one_query_for_the_page(staff, world):
    response = staff.get(CONTACTS)
    html = response.content.decode()
    ada = world["ada"]
    rows = {str(c): c for c in response.context["cl"].result_list}
    assert rows["ada@example.com"].event_count == 1 and rows["bob@example.com"].event_count == 0
    assert f"?contact__id__exact={ada.pk}" in html
    assert f"{ada.last_seen_at:%Y-%m-%d %H:%M}" in html
    with CaptureQueriesContext(connection) as queries:
        staff.get(CONTACTS)
    events = [q["sql"] for q in queries if "contacts_contactevent" in q["sql"]]
    assert len(events) == 1 and "GROUP BY" in events[0].upper()


def test_source_and_date_filters(staff, world):
    other, _ = make_integration("segment", name="Other")
    Contact.objects.filter(user_id="u2").update(source=other, created_at=timezone.now() - timezone.timedelta(days=40))
    assert shown(staff.get(CONTACTS, {"source__id__exact": other.pk})) == {"bob@example.com"}
    week = timezone.now() - timezone.timedelta(days=7)
    recent = staff.get(CONTACTS, {"created_at__gte": week.isoformat()})
    assert shown(recent) == {str(c) for c in Contact.objects.filter(created_at__gte=week)}
    assert "ada@example.com" in shown(recent) and "bob@example.com" not in shown(recent)
    seen = staff.get(CONTACTS, {"last_seen_at__isnull": "False"})
    assert shown(seen) == {str(c) for c in Contact.objects.filter(last_seen_at__isnull=False)}


def test_search_by_email_domain(staff, world):
    Contact.objects.create(email="carol@other.org")
    at_example = shown(staff.get(CONTACTS, {"q": "@example.com"}))
    assert at_example == {str(c) for c in Contact.objects.filter(email__endswith="@example.com")}
    assert {"ada@example.com", "bob@example.com"} <= at_example
    assert shown(staff.get(CONTACTS, {"q": "@OTHER.org"})) == {"carol@other.org"}


# --- typed properties on the contact page ----------------------------------------------------------
def test_editing_typed_properties_checks_stamps_and_records_them(staff, world):
    ada = world["ada"]
    PropertyDefinition.objects.create(name="seats", type="number")
    PropertyDefinition.objects.create(name="trial", type="boolean")
    url = reverse("admin:contacts_contact_change", args=[ada.pk])
    data = form_data(staff.get(url), "contact_form")
    data.update({"prop__plan": "team", "prop__seats": "not a number", "prop__trial": "true"})
    bad = staff.post(url, data)
    assert bad.status_code == 200
    assert "prop__seats" in bad.context["adminform"].form.errors
    data["prop__seats"] = "12"
    data["prop__company"] = ""  # empty removes
    response = staff.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    ada.refresh_from_db()
    assert ada.properties == {"plan": "team", "seats": 12, "trial": True}
    assert "seats" in ada.stamps and "company" in ada.stamps
    changes = {
        c.name: (c.old, c.new, c.actor) for c in ContactChange.objects.filter(contact=ada, actor__startswith="admin")
    }
    assert changes["plan"] == ("pro", "team", "admin:admin")
    assert changes["company"] == ("Analytical Engines", None, "admin:admin")
    assert changes["seats"] == (None, 12, "admin:admin")


# --- the buttons on a contact's page ------------------------------------------------------------------
def test_unsubscribe_and_resubscribe_buttons_ask_then_act(staff, world):
    ada = world["ada"]
    change = reverse("admin:contacts_contact_change", args=[ada.pk])
    unsubscribe = reverse("admin:contacts_contact_unsubscribe_one", args=[ada.pk])
    resubscribe = reverse("admin:contacts_contact_resubscribe_one", args=[ada.pk])
    html = staff.get(change).content.decode()
    # Only the button that applies: a subscribed contact can be unsubscribed.
    assert unsubscribe in html and resubscribe not in html
    assert "Yes, unsubscribe" in staff.get(unsubscribe).content.decode()
    assert Contact.objects.get(pk=ada.pk).subscribed
    done = staff.post(unsubscribe, {"confirm": "yes"}, follow=True)
    assert any("Unsubscribed" in t for t in messages_of(done))
    assert not Contact.objects.get(pk=ada.pk).subscribed
    assert Suppression.objects.filter(email_md5=email_md5("ada@example.com"), reason="unsubscribed").exists()
    html = staff.get(change).content.decode()
    assert resubscribe in html and unsubscribe not in html
    done = staff.post(resubscribe, {"confirm": "yes"}, follow=True)
    assert any(t.startswith("Resubscribed") for t in messages_of(done))
    assert Contact.objects.get(pk=ada.pk).subscribed
    assert not Suppression.objects.filter(email_md5=email_md5("ada@example.com")).exists()
    history = list(ContactChange.objects.filter(contact=ada, kind="subscription").order_by("id"))
    assert [(c.old, c.new) for c in history] == [(True, False), (False, True)]


def test_resubscribe_warns_that_a_bounce_stays(staff, world):
    ada = world["ada"]
    contact_unsubscribe(contacts=[ada], reason="test")
    Suppression.objects.filter(email_md5=email_md5("ada@example.com")).update(reason="bounced")
    resubscribe = reverse("admin:contacts_contact_resubscribe_one", args=[ada.pk])
    assert "suppressed as bounced" in staff.get(resubscribe).content.decode()
    done = staff.post(resubscribe, {"confirm": "yes"}, follow=True)
    assert any("stays suppressed (bounced)" in t for t in messages_of(done))
    assert Suppression.objects.filter(email_md5=email_md5("ada@example.com"), reason="bounced").exists()


def test_erase_button_asks_then_erases(staff, world):
    ada = world["ada"]
    erase = reverse("admin:contacts_contact_erase_one", args=[ada.pk])
    ask = staff.get(erase).content.decode()
    assert "This cannot be undone" in ask and "1 event(s)" in ask
    assert Contact.objects.filter(pk=ada.pk).exists()
    done = staff.post(erase, {"confirm": "yes"}, follow=True)
    assert any(t.startswith("Erased ada@example.com") for t in messages_of(done))
    assert not Contact.objects.filter(pk=ada.pk).exists()
    assert not ContactChange.objects.filter(contact_id=ada.pk).exists()
    assert Suppression.objects.filter(user_id="u1", reason="erased").exists()


# --- suppressions: the matching contact, lifting ------------------------------------------------------
def test_suppressions_show_the_matching_contact_not_a_hash(staff, world):
    ada = world["ada"]
    contact_unsubscribe(contacts=[ada], reason="test")  # an MD5-only suppression
    Suppression.objects.create(user_id="u2", reason="bounced")
    response = staff.get(SUPPRESSIONS)
    html = response.content.decode()
    assert f'href="{reverse("admin:contacts_contact_change", args=[ada.pk])}"' in html
    bob = Contact.objects.get(user_id="u2")
    assert f'href="{reverse("admin:contacts_contact_change", args=[bob.pk])}"' in html
    assert email_md5("ada@example.com") not in html.replace(f'title="{email_md5("ada@example.com")}"', "")
    with CaptureQueriesContext(connection) as queries:
        staff.get(SUPPRESSIONS)
    assert len([q for q in queries if '"contacts_contact"' in q["sql"]]) == 1


def test_lifting_suppressions_asks_first(staff, world):
    rows = Suppression.objects.filter(reason="uploaded")
    ids = list(rows.values_list("pk", flat=True))
    ask = staff.post(SUPPRESSIONS, {"action": "lift", "_selected_action": ids})
    assert ask.status_code == 200 and "Yes, lift them" in ask.content.decode()
    assert rows.count() == len(ids)
    data = form_data(ask, "sy-confirm-form")
    assert data["confirm"] == "yes" and data["action"] == "lift"
    done = staff.post(SUPPRESSIONS, data, follow=True)
    assert f"Lifted {len(ids)} suppression(s)." in messages_of(done)
    assert not Suppression.objects.filter(pk__in=ids).exists()


def test_lift_button_on_a_suppression(staff, world):
    erased = Suppression.objects.filter(reason="erased").first()
    lift = reverse("admin:contacts_suppression_lift_one", args=[erased.pk])
    assert lift in staff.get(reverse("admin:contacts_suppression_change", args=[erased.pk])).content.decode()
    assert "created again" in staff.get(lift).content.decode()
    staff.post(lift, {"confirm": "yes"})
    assert not Suppression.objects.filter(pk=erased.pk).exists()
