"""Which traits are contact fields, and the checks a field value must pass to be stored."""

from __future__ import annotations

import functools

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from contacts.properties import snake_name

# Trait keys (in snake_case, whatever the sender's casing) that are contact fields.
FIELD_TRAITS = {
    "email": "email",
    "first_name": "first_name",
    "firstname": "first_name",
    "last_name": "last_name",
    "lastname": "last_name",
    "phone": "phone",
    "address": "address",
}
# Keys handled elsewhere (name is split into first and last, subscribed and mailingLists have
# their own rules) or meaningless as properties (the ids).
SPECIAL_TRAITS = {"name", "subscribed", "mailing_lists", "user_id", "id", "anonymous_id"}
NAME_KEYS = ("firstName", "first_name", "lastName", "last_name")
EMAIL_MAX = 320


# The same few trait keys arrive millions of times: classify each once per process.
@functools.lru_cache(maxsize=8192)
def field_for(key: str) -> str | None:
    """The contact field a trait key sets, or None."""
    return FIELD_TRAITS.get(snake_name(key) or "")


@functools.lru_cache(maxsize=8192)
def is_special(key: str) -> bool:
    return (snake_name(key) or "") in SPECIAL_TRAITS


def clean_email(value) -> str | None:
    """The address, stripped and lowercased, or None when it is not a valid email address.

    Loops' own docs print `[email protected]` where an address was obfuscated; that text
    once became a contact's email, which the admin then refused to save and a later real
    address could not replace. Only a valid address is stored.
    """
    if not isinstance(value, str):
        return None
    return _clean_email(value)


# A chunk reads each address several times (to load, to match, to store): validate it once.
@functools.lru_cache(maxsize=4096)
def _clean_email(value: str) -> str | None:
    email = value.strip().lower()
    if not email or len(email) > EMAIL_MAX:
        return None
    try:
        validate_email(email)
    except ValidationError:
        return None
    return email


def split_name(name: str) -> tuple[str, str]:
    """'Ann Marie Lee' → ('Ann', 'Marie Lee'): the first word, then the rest."""
    first, _, last = name.strip().partition(" ")
    return first, last.strip()
