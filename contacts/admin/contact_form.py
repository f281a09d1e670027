"""The contact form: the standard fields, and one typed field per defined property.

Property fields are named `prop__<name>`. A value is checked with the same `coerce` the drain
and the API use; an empty field removes the property. Saved through contacts.services, so
each edit is stamped (no older Segment message overwrites it) and recorded in the history.
"""

from __future__ import annotations

from typing import Any

from django import forms
from unfold.widgets import UnfoldAdminNullBooleanSelectWidget, UnfoldAdminTextInputWidget

from contacts.models import Contact, PropertyDefinition, PropertyType
from contacts.properties import PropertyError, coerce

PREFIX = "prop__"
# Past this many definitions only the contact's own properties get a field (the form would be
# a wall of empty inputs); the rest are set through the API.
MAX_PROPERTY_FIELDS = 100

HINTS = {
    PropertyType.TEXT: "Text.",
    PropertyType.NUMBER: "A number, e.g. 42 or 3.5.",
    PropertyType.BOOLEAN: "Yes or no.",
    PropertyType.DATE: "A date: YYYY-MM-DD, MM/DD/YYYY or ISO 8601 with a time.",
    PropertyType.COLLECTION: "Items separated by commas: a, b, c.",
}


class ContactForm(forms.ModelForm):
    definitions: dict[str, PropertyDefinition] = {}

    class Meta:
        model = Contact
        fields = ["email", "user_id", "first_name", "last_name", "phone"]
        help_texts = {
            "email": "Stored lowercase; unique.",
            "user_id": "The sender's userId; unique.",
        }

    def clean_email(self) -> str | None:
        email = (self.cleaned_data.get("email") or "").strip().lower()
        if email and "@" not in email:
            raise forms.ValidationError("Enter an email address (it needs an @).")
        return email or None

    def clean_user_id(self) -> str | None:
        return (self.cleaned_data.get("user_id") or "").strip() or None

    def clean(self) -> dict:
        cleaned = super().clean()
        for name, definition in self.definitions.items():
            field = PREFIX + name
            if field not in cleaned or field not in self.changed_data:
                continue
            raw = cleaned[field]
            if raw in (None, ""):
                cleaned[field] = None
                continue
            try:
                cleaned[field] = coerce(raw, definition.type)
            except PropertyError as error:
                self.add_error(field, f"Not a valid {definition.type}: {error}.")
        return cleaned

    def changed_properties(self) -> dict[str, Any]:
        """{name: new value or None (remove)} for the property fields staff changed."""
        return {
            field.removeprefix(PREFIX): self.cleaned_data.get(field)
            for field in self.changed_data
            if field.startswith(PREFIX)
        }


def initial_value(value: Any, type_: str) -> Any:
    if value is None:
        return None
    if type_ == PropertyType.COLLECTION and isinstance(value, list):
        return ", ".join(map(str, value))
    if type_ == PropertyType.BOOLEAN:
        return value
    return str(value)


def property_field(definition: PropertyDefinition, contact: Contact | None) -> forms.Field:
    stamps = contact.stamps if contact is not None else {}
    when = (stamps.get(definition.name) or "")[:19].replace("T", " ")
    help_text = HINTS.get(definition.type, "")
    if definition.description:
        help_text = f"{definition.description} · {help_text}"
    if when:
        help_text += f" Set {when} UTC."
    label = definition.name
    if definition.type == PropertyType.BOOLEAN:
        return forms.NullBooleanField(
            label=label,
            required=False,
            help_text=help_text,
            widget=UnfoldAdminNullBooleanSelectWidget(),
        )
    return forms.CharField(label=label, required=False, help_text=help_text, widget=UnfoldAdminTextInputWidget())


def contact_form(contact: Contact | None) -> type[ContactForm]:
    """A ContactForm with a field per defined property, filled with the contact's values."""
    definitions = {d.name: d for d in PropertyDefinition.objects.order_by("name")[: MAX_PROPERTY_FIELDS + 1]}
    if len(definitions) > MAX_PROPERTY_FIELDS and contact is not None:
        names = set(contact.properties or {})
        definitions = {d.name: d for d in PropertyDefinition.objects.filter(name__in=names).order_by("name")}
    attrs: dict[str, Any] = {"definitions": definitions}
    for name, definition in definitions.items():
        field = property_field(definition, contact)
        if contact is not None:
            field.initial = initial_value((contact.properties or {}).get(name), definition.type)
        attrs[PREFIX + name] = field
    return type("ContactFormWithProperties", (ContactForm,), attrs)


def property_fields(form_class: type[ContactForm]) -> list[str]:
    return [PREFIX + name for name in form_class.definitions]
