"""Rules for what staff may save as a loop, shared by the API serializer and the admin form.

Each raises ValueError with a message for the field it checks; the caller names the field.
"""

from __future__ import annotations

from typing import Any

MAX_EVENT_NAMES = 50
MAX_STEPS = 50
MAX_DELAY_MINUTES = 366 * 1440  # a year and a day


def event_names(value: Any) -> list[str]:
    """A list of distinct event names (trimmed, 1-255 characters), in the order given."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError('a list of event names, e.g. ["User Registered"]')
    names: list[str] = []
    for n, name in enumerate(value, start=1):
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"item {n}: an event name is a non-empty string, not {name!r}")
        name = name.strip()
        if "\x00" in name:
            raise ValueError(f"item {n}: an event name cannot hold a NUL character")
        if len(name) > 255:
            raise ValueError(f"item {n}: event names are at most 255 characters")
        if name not in names:
            names.append(name)
    if len(names) > MAX_EVENT_NAMES:
        raise ValueError(f"at most {MAX_EVENT_NAMES} event names")
    return names


def loop_consistency(
    *, enabled: bool, trigger_events: list[str], exit_events: list[str], reentry: str, reentry_days, steps: int
) -> dict[str, str]:
    """{field: what is wrong} for the loop as a whole."""
    errors: dict[str, str] = {}
    both = [n for n in trigger_events if n in exit_events]
    if both:
        errors["exit_events"] = f"an event cannot both start and exit the loop: {', '.join(both)}"
    if reentry == "after_days":
        if reentry_days is None or reentry_days < 1:
            errors["reentry_days"] = "with reentry 'after_days', reentry_days is required (1 or more)"
    if enabled and not trigger_events:
        errors["trigger_events"] = "an enabled loop needs at least one trigger event"
    if enabled and not steps:
        errors["steps"] = "an enabled loop needs at least one step"
    if steps > MAX_STEPS:
        errors["steps"] = f"at most {MAX_STEPS} steps"
    return errors
