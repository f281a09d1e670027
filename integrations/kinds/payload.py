"""Reading Segment payloads: the parts of a message the kinds apply, always as the right type."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from integrations.models import InboxMessage


def _object(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def payload_of(message: InboxMessage) -> dict:
    return _object(message.payload)


def traits_of(message: InboxMessage) -> dict:
    return _object(payload_of(message).get("traits"))


def context_of(message: InboxMessage) -> dict:
    return _object(payload_of(message).get("context"))


def context_traits_of(message: InboxMessage) -> dict:
    return _object(context_of(message).get("traits"))


def properties_of(message: InboxMessage) -> dict:
    return _object(payload_of(message).get("properties"))


def identify_traits(message: InboxMessage) -> dict:
    """An identify's traits: `traits`, over `context.traits` (RudderStack's Python SDK sends
    them only there). Top-level traits win where both name the same key."""
    context_traits = context_traits_of(message)
    traits = traits_of(message)
    return {**context_traits, **traits} if context_traits else traits


def page_properties(message: InboxMessage) -> dict:
    """A page or screen call's properties, with the top-level `name` and `category` (as the
    Python library sends them) kept beside what analytics.js puts in properties."""
    properties = properties_of(message)
    payload = payload_of(message)
    extra = {k: payload[k] for k in ("name", "category") if isinstance(payload.get(k), str) and k not in properties}
    return {**properties, **extra} if extra else properties


def message_emails(message: InboxMessage) -> set[str]:
    """Every email a message carries: top level, traits, context.traits and properties."""
    found = {message.email.lower()} if message.email else set()
    payload = payload_of(message)
    for source in (payload, traits_of(message), properties_of(message), context_traits_of(message)):
        value = source.get("email")
        if isinstance(value, str) and "@" in value:
            found.add(value.strip().lower()[:320])
    return found


def chunk_ids(messages: Iterable[InboxMessage]) -> tuple[set[str], set[str], set[str]]:
    """(userIds, emails, anonymousIds) a chunk names, so a batch can load them in one go."""
    user_ids: set[str] = set()
    emails: set[str] = set()
    anons: set[str] = set()
    for message in messages:
        if message.user_id:
            user_ids.add(message.user_id)
        if message.anonymous_id:
            anons.add(message.anonymous_id)
        emails.update(message_emails(message))
        if message.type == "alias":
            previous = payload_of(message).get("previousId")
            if previous:
                user_ids.add(str(previous))
                anons.add(str(previous))
    return user_ids, emails, anons
