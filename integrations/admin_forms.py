"""The integration form: each setting the kind declares becomes a real form field.

Values are parsed with `Setting.parse` (the same rules as `create_integration --set`) and kept
in `Integration.settings`. A value equal to the default is not stored, so defaults can evolve.

The add form carries every kind's settings (named `setting_<kind>__<name>`, since kinds share
setting names); the page shows those of the kind chosen as soon as it is chosen
(`conditions`, unfold's conditional fields) and only those are read on save.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.utils.html import escape
from unfold.widgets import (
    UnfoldAdminIntegerFieldWidget,
    UnfoldAdminPasswordToggleWidget,
    UnfoldAdminPasswordWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextInputWidget,
    UnfoldBooleanSwitchWidget,
)

from integrations.kinds.base import KINDS, Kind, Setting
from integrations.models import Integration

PREFIX = "setting_"
KEEP_CURRENT_HINT = "Leave empty to keep the current value."


def field_name(spec: Setting, kind: str | None = None) -> str:
    return f"{PREFIX}{kind}__{spec.name}" if kind else f"{PREFIX}{spec.name}"


def setting_field(spec: Setting) -> forms.Field:
    """The form field for one kind setting, its help text included."""
    default = "empty" if spec.default in ("", None) else repr(spec.default)
    # The admin renders help text as HTML; these are plain sentences.
    help_text = escape(f"{spec.help} Default: {default}.")
    label = spec.name.replace("_", " ").capitalize()
    if spec.type is bool:
        return forms.BooleanField(label=label, required=False, help_text=help_text, widget=UnfoldBooleanSwitchWidget())
    if spec.type is int:
        return forms.IntegerField(
            label=label, required=False, min_value=0, help_text=help_text, widget=UnfoldAdminIntegerFieldWidget()
        )
    if spec.choices:
        return forms.ChoiceField(
            label=label,
            required=False,
            choices=[(c, c) for c in spec.choices],
            help_text=help_text,
            widget=UnfoldAdminSelectWidget(),
        )
    if spec.secret:
        return forms.CharField(
            label=label,
            required=False,
            widget=UnfoldAdminPasswordWidget(render_value=False),
            help_text=f"{help_text} {escape(KEEP_CURRENT_HINT)}",
        )
    return forms.CharField(label=label, required=False, help_text=help_text, widget=UnfoldAdminTextInputWidget())


class IntegrationForm(forms.ModelForm):
    kind_class: type[Kind] | None = None

    class Meta:
        model = Integration
        fields = ["kind", "name", "enabled", "daily_cap", "shared_secret"]
        widgets = {"shared_secret": UnfoldAdminPasswordToggleWidget(render_value=True)}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "daily_cap" in self.fields:
            self.fields["daily_cap"].min_value = 1
            self.fields["daily_cap"].widget.attrs["min"] = 1
        stored = self.instance.settings or {}
        for spec in self.specs():
            self.fields[self.setting_field(spec)].initial = None if spec.secret else stored.get(spec.name, spec.default)

    def specs(self) -> tuple[Setting, ...]:
        return self.kind_class.settings if self.kind_class else ()

    def setting_field(self, spec: Setting) -> str:
        return field_name(spec)

    def clean_daily_cap(self) -> int | None:
        value = self.cleaned_data.get("daily_cap")
        if value is not None and value < 1:
            raise forms.ValidationError("The daily cap must be at least 1, or empty for no cap.")
        return value

    def clean(self) -> dict:
        cleaned = super().clean()
        stored = self.instance.settings or {}
        options = {k: v for k, v in stored.items() if not self.kind_class or not self.kind_class.setting(k)}
        for spec in self.specs():
            name = self.setting_field(spec)
            if name not in cleaned:
                continue  # the field already failed its own validation
            raw = cleaned[name]
            if spec.secret and raw in ("", None):
                if spec.name in stored:
                    options[spec.name] = stored[spec.name]
                continue
            try:
                value = spec.parse(raw)
            except ValueError as error:
                self.add_error(name, str(error))
                continue
            if value != spec.default:
                options[spec.name] = value
        self.cleaned_settings = options
        return cleaned

    def save(self, commit: bool = True) -> Integration:
        if hasattr(self, "cleaned_settings"):
            self.instance.settings = self.cleaned_settings
        return super().save(commit=commit)


class IntegrationAddForm(IntegrationForm):
    """Every kind's settings; the chosen kind's are read (see the module's docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        kind = self.fields["kind"].widget
        kind.attrs["autofocus"] = True
        # A kind with a suggested daily cap fills it in when chosen, unless staff typed one.
        caps = {name: cls.default_daily_cap for name, cls in KINDS.items() if cls.default_daily_cap}
        kind.attrs["x-on:change"] = (
            f"const caps = {json.dumps(caps)}; const chosen = caps[$event.target.value]; if (!daily_cap && chosen) daily_cap = chosen"
        )

    def specs(self) -> tuple[Setting, ...]:
        kind = KINDS.get(self.data.get("kind") or "") if self.is_bound else None
        return kind.settings if kind else ()

    def setting_field(self, spec: Setting) -> str:
        return field_name(spec, self.data.get("kind"))

    def clean(self) -> dict:
        kind = KINDS.get(self.data.get("kind") or "")
        self.kind_class = kind
        cleaned = super().clean()
        # Only the chosen kind's settings are checked and kept: the others were hidden.
        for name in list(self.errors):
            if name.startswith(PREFIX) and not (kind and name.startswith(f"{PREFIX}{kind.kind}__")):
                del self.errors[name]
        return cleaned


def add_form() -> type[IntegrationAddForm]:
    """The add form with every kind's settings, and the conditions that show them."""
    attrs: dict[str, Any] = {}
    for name, kind_class in sorted(KINDS.items()):
        for spec in kind_class.settings:
            attrs[field_name(spec, name)] = setting_field(spec)
    return type("IntegrationAddFormAllKinds", (IntegrationAddForm,), attrs)


def kind_setting_fields() -> list[tuple[str, str]]:
    """(field, kind) for every kind's settings on the add form."""
    return [
        (field_name(spec, name), name) for name, kind_class in sorted(KINDS.items()) for spec in kind_class.settings
    ]


def form_for_kind(kind_class: type[Kind] | None) -> type[IntegrationForm]:
    """An IntegrationForm subclass carrying one field per setting of the kind."""
    if kind_class is None:
        return IntegrationForm
    attrs: dict[str, Any] = {field_name(spec): setting_field(spec) for spec in kind_class.settings}
    attrs["kind_class"] = kind_class
    return type(f"{kind_class.__name__}Form", (IntegrationForm,), attrs)
