"""Integration lifecycle: create with settings, validate settings against the kind."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from integrations.keys import api_key_create
from integrations.kinds.base import get_kind
from integrations.models import Integration

MODEL_SETTINGS = ("daily_cap", "shared_secret")


def settings_clean(*, kind: str, values: dict[str, Any]) -> tuple[dict, dict]:
    """Split and validate settings into (model fields, kind settings). Raises ValueError."""
    kind_class = get_kind(kind)
    fields: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for name, raw in values.items():
        if name == "daily_cap":
            if not kind_class.inbound:
                raise ValueError("daily_cap applies to inbound kinds only")
            try:
                fields[name] = int(raw) if raw not in (None, "") else None
            except (TypeError, ValueError):
                raise ValueError(f"daily_cap must be a whole number, not {raw!r}") from None
            if fields[name] is not None and fields[name] < 1:
                raise ValueError("daily_cap must be at least 1")
        elif name == "shared_secret":
            if not kind_class.inbound:
                raise ValueError("shared_secret applies to inbound kinds only")
            fields[name] = str(raw or "")
        else:
            spec = kind_class.setting(name)
            if spec is None:
                known = (
                    ", ".join([*MODEL_SETTINGS, *(s.name for s in kind_class.settings)])
                    if kind_class.inbound
                    else ", ".join(s.name for s in kind_class.settings)
                )
                raise ValueError(f"{kind} has no setting {name!r}; it takes: {known}")
            options[name] = spec.parse(raw)
    return fields, options


@transaction.atomic
def integration_create(
    *, kind: str, name: str, settings: dict[str, Any] | None = None
) -> tuple[Integration, str | None]:
    """Create an integration; inbound kinds get an API key, returned once in full."""
    kind_class = get_kind(kind)
    fields, options = settings_clean(kind=kind, values=settings or {})
    if kind_class.inbound and "daily_cap" not in fields:
        fields["daily_cap"] = kind_class.default_daily_cap
    integration = Integration.objects.create(kind=kind, name=name, settings=options, **fields)
    key = api_key_create(integration=integration) if kind_class.inbound else None
    return integration, key
