"""Helpers for the admin tests: a populated database and a form reader that acts like a browser."""

from __future__ import annotations

from html.parser import HTMLParser

from django.contrib.auth import get_user_model

from contacts.models import AudienceMembership, Contact, MailingList, PropertyDefinition
from contacts.services import contact_erase, suppressions_add
from integrations.drain import drain_inbox
from tests.conftest import SegmentClient, make_integration


class _FormReader(HTMLParser):
    """Collects what a browser would submit from the first <form> with the given id."""

    def __init__(self, form_id: str | None) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.data: dict[str, list[str]] = {}
        self.select: str | None = None
        self.select_value: str | None = None
        self.first_option: str | None = None
        self.textarea: str | None = None
        self.text = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and (self.form_id is None or attrs.get("id") == self.form_id):
            self.inside = True
        if not self.inside:
            return
        name = attrs.get("name")
        if tag == "input" and name:
            kind = attrs.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    self.data.setdefault(name, []).append(attrs.get("value", "on"))
            elif kind not in ("submit", "button", "file", "image"):
                self.data.setdefault(name, []).append(attrs.get("value") or "")
        elif tag == "select" and name:
            self.select, self.select_value, self.first_option = name, None, None
        elif tag == "option" and self.select:
            value = attrs.get("value", "")
            if self.first_option is None:
                self.first_option = value
            if "selected" in attrs:
                self.select_value = value
        elif tag == "textarea" and name:
            self.textarea, self.text = name, ""

    def handle_data(self, data):
        if self.textarea:
            self.text += data

    def handle_endtag(self, tag):
        if tag == "form" and self.inside:
            self.inside = False
            self.form_id = "-done-"
        elif tag == "select" and self.select:
            value = self.select_value if self.select_value is not None else self.first_option
            self.data.setdefault(self.select, []).append(value or "")
            self.select = None
        elif tag == "textarea" and self.textarea:
            self.data.setdefault(self.textarea, []).append(self.text.lstrip("\n"))
            self.textarea = None


def form_data(response, form_id: str | None = None) -> dict[str, list[str] | str]:
    """The fields of a rendered admin form, as a browser would post them unchanged."""
    reader = _FormReader(form_id)
    reader.feed(response.content.decode())
    return {k: v if len(v) > 1 else v[0] for k, v in reader.data.items()}


def make_superuser(username: str = "admin", password: str = "pw-for-tests-only"):
    return get_user_model().objects.create_superuser(username, f"{username}@example.com", password)


def populate() -> dict:
    """One of everything the admin shows, made through the real inbound pipeline where it can be."""
    integration, key = make_integration("segment", name="Website")
    client = SegmentClient(key)
    PropertyDefinition.objects.create(name="plan", type="text", description="Billing plan")
    MailingList.objects.create(list_id="news", name="Newsletter")
    client.post(
        "/v1/identify",
        {
            "userId": "u1",
            "messageId": "m-identify-1",
            "traits": {
                "email": "Ada@Example.com",
                "firstName": "Ada",
                "lastName": "Lovelace",
                "plan": "pro",
                "mailingLists": {"news": True},
            },
        },
    )
    client.post("/v1/track", {"userId": "u1", "messageId": "m-track-1", "event": "Signed Up", "properties": {"a": 1}})
    client.post("/v1/identify", {"userId": "u2", "messageId": "m-identify-2", "traits": {"email": "bob@example.com"}})
    client.post("/v1/track", b"{not json")
    drain_inbox(max_seconds=30)
    # A later identify changes what the first one set: the contact's history records it.
    client.post(
        "/v1/identify",
        {
            "userId": "u1",
            "messageId": "m-identify-3",
            "traits": {"company": "Analytical Engines", "phone": "+44 20 7946"},
        },
    )
    drain_inbox(max_seconds=30)
    ada = Contact.objects.get(user_id="u1")
    AudienceMembership.objects.create(contact=ada, key="big_spenders", member=True)
    suppressions_add(emails=["old@example.com"], note="test")
    contact_erase(email="gone@example.com", requested_by="test")
    from tests.outbound.support import populate_outbound

    populate_outbound()
    return {"integration": integration, "key": key, "client": client, "ada": ada}
