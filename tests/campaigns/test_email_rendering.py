"""Templates as staff write them: Django syntax with `contact` and `event`, the person as plain
read-only values, escaping where it belongs, a text part always, CSS inlined."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from campaigns.email.rendering import TemplateError, template_errors
from campaigns.email.services import email_preview, email_template_save
from contacts.models import Contact
from tests.campaigns.factories import make_contact, make_template

pytestmark = pytest.mark.django_db


def preview(html: str, contact=None, *, event=None, **template_fields) -> dict:
    template = make_template(html=html, **template_fields)
    return email_preview(template=template, contact=contact, event=event)


def test_the_contact_is_plain_values_with_properties_named_as_sent():
    contact = make_contact(
        "ada@example.com", first_name="Ada", user_id="u-1", properties={"favoriteColor": "teal", "plan": "pro"}
    )
    out = preview(
        "<p>{{ contact.email }} {{ contact.first_name }} {{ contact.user_id }} {{ contact.properties.favoriteColor }}"
        " {{ contact.properties.plan }}</p>",
        contact,
    )
    assert "ada@example.com Ada u-1 teal pro" in out["html"]


def test_a_template_cannot_reach_the_model():
    contact = make_contact("keep@example.com")
    out = preview(
        "<p>[{{ contact.delete }}][{{ contact.save }}][{{ contact.properties.clear }}]"
        "[{{ contact.email_sends }}][{{ contact.subscribed }}]</p>",
        contact,
    )
    assert "[][][][][]" in out["html"]
    assert Contact.objects.filter(pk=contact.pk).exists()
    assert Contact.objects.get(pk=contact.pk).properties == {"favoriteColor": "green"}


def test_html_is_escaped_and_the_text_and_subject_are_not():
    contact = make_contact(first_name="<b>Tom & Jerry</b>")
    out = preview(
        "<p>Hi {{ contact.first_name }}</p>",
        contact,
        subject="For {{ contact.first_name }}",
        text="Hi {{ contact.first_name }}",
    )
    assert "Hi &lt;b&gt;Tom &amp; Jerry&lt;/b&gt;" in out["html"]
    assert out["subject"] == "For <b>Tom & Jerry</b>"
    assert out["text"].startswith("Hi <b>Tom & Jerry</b>")


def test_the_text_part_is_made_from_the_html_when_not_written():
    contact = make_contact(first_name="Ada", properties={"plan": "pro"})
    out = preview(
        "<h1>Welcome {{ contact.first_name }}</h1><p>Plan: <b>{{ contact.properties.plan }}</b>.</p>"
        '<p><a href="https://example.com/start?u={{ contact.user_id }}">Get started</a></p>'
        "<ul>{% for item in event.properties.items %}<li>{{ item }}</li>{% endfor %}</ul>",
        contact,
        event={"name": "Signed Up", "properties": {"items": ["one", "two"]}},
    )
    text = out["text"]
    assert "Welcome Ada" in text and "Plan: **pro**." in text
    assert f"[Get started](https://example.com/start?u={contact.user_id})" in text
    assert "* one" in text and "* two" in text
    assert "Unsubscribe: http://127.0.0.1:8000/email/unsubscribe/" in text
    assert "<" not in text.replace("<b>", "")  # no markup left


def test_a_written_text_part_is_used_as_written():
    out = preview("<p>html</p>", make_contact(first_name="Ada"), text="Plain {{ contact.first_name }}.")
    assert out["text"].startswith("Plain Ada.")


def test_css_is_inlined_for_mail_clients():
    out = preview("<style>.cta { color: #ff0000; }</style><p class='cta'>Go</p>", make_contact())
    assert 'style="color: #ff0000;"' in out["html"]


def test_the_logo_and_the_unsubscribe_link_come_with_the_layout_once():
    fragment = preview("<p>Body</p>", make_contact(), logo_url="https://example.com/logo.png")
    assert fragment["html"].count("https://example.com/logo.png") == 1
    assert fragment["html"].count("/email/unsubscribe/") == 1
    own = preview(
        '<img src="{{ logo_url }}"><p>Body</p><a href="{{ unsubscribe_url }}">Leave</a>',
        make_contact(),
        logo_url="https://example.com/logo.png",
    )
    assert own["html"].count("https://example.com/logo.png") == 1
    assert own["html"].count("/email/unsubscribe/") == 1
    document = preview("<html><body><p>Mine</p></body></html>", make_contact())
    assert document["html"].count("/email/unsubscribe/") == 1
    assert "sy-inner" not in document["html"]  # a whole document keeps its own shape
    transactional = preview("<p>Receipt</p>", make_contact(), transactional=True)
    assert "unsubscribe" not in transactional["html"].lower() and "unsubscribe" not in transactional["text"].lower()


def test_the_event_is_what_the_template_sees():
    out = preview(
        "<p>{{ event.name }} {{ event.properties.order_id }} {{ event.timestamp|date:'Y-m-d' }}</p>",
        make_contact(),
        event={"name": "Order Completed", "properties": {"order_id": "A-9"}, "timestamp": "2026-03-01T10:00:00Z"},
    )
    assert "Order Completed A-9 2026-03-01" in out["html"]


def test_errors_name_the_part_and_the_line():
    assert template_errors(subject="Hi", html="<p>a</p>\n<p>{% if x %}</p>", text="") == {
        "html": "line 2: Unclosed tag on line 2: 'if'. Looking for one of: elif, else, endif."
    }
    errors = template_errors(subject="{% load static %}", html="x", text="a\nb\n{{ x|nosuchfilter }}")
    assert set(errors) == {"subject", "text"}
    assert errors["text"].startswith("line 3: Invalid filter: 'nosuchfilter'")
    assert "static" in errors["subject"]
    with pytest.raises(ValidationError) as refused:
        email_template_save(name="x", subject="Hi", html="{% endif %}", text="", transactional=False, logo_url="")
    assert refused.value.message_dict["html"][0].startswith("line 1: ")


def test_site_templates_are_out_of_reach():
    template = make_template(html='<p>{% include "admin/base_site.html" %}</p>')
    with pytest.raises(TemplateError) as error:
        email_preview(template=template, contact=make_contact())
    assert error.value.part == "html"


def test_css_is_inlined_once_per_template_unless_a_tag_decides_which_css_applies():
    from campaigns.email.rendering import compile_template

    once = compile_template(
        subject="s", html="<style>p { color: #00f; }</style><p>{{ contact.first_name }}</p>", text=""
    )
    assert once.has_css is False  # done at compile time, for everyone
    per_person = [
        "<style>.vip { color: #f00; }</style><p class='{% if contact.properties.vip %}vip{% endif %}'>x</p>",
        "<style>p { color: {{ contact.properties.colour }}; }</style><p>x</p>",
        "<style>td { color: #0f0; }</style><table>{% for n in event.properties.rows %}<tr><td>{{ n }}</td></tr>"
        "{% endfor %}</table>",
    ]
    for html in per_person:
        assert compile_template(subject="s", html=html, text="").has_css is True, html
    vip = make_contact(first_name="Ada", properties={"vip": True, "colour": "#123456"})
    assert 'style="color: #f00;"' in preview(per_person[0], vip)["html"]
    assert 'style="color: #123456;"' in preview(per_person[1], vip)["html"]
    rows = preview(per_person[2], vip, event={"name": "x", "properties": {"rows": [1, 2]}})["html"]
    assert rows.count('<td style="color: #0f0;">') == 2
    assert (
        'style="color: #00f;">Ada</p>'
        in preview("<style>p { color: #00f; }</style><p>{{ contact.first_name }}</p>", vip)["html"]
    )


def test_a_render_error_in_an_inlined_template_still_names_the_staffs_line():
    template = make_template(html="<style>p { color: red; }</style>\n<p>ok</p>\n<p>{% widthratio 1 0 x %}</p>")
    with pytest.raises(TemplateError) as error:
        email_preview(template=template, contact=make_contact())
    assert (error.value.part, error.value.line) == ("html", 3)
