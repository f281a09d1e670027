"""Loops (seeds/001): contacts and mailing lists from identify; events that trigger loops from track.

- Identify creates a contact only with a userId and an email; it matches on userId, else email.
- Every other trait is a custom property under the name the sender used; mailingLists sets
  list membership ([{listId, subscribed}] or {listId: bool}); subscribed is three-state.
- Track needs an email (properties, context.traits or top level) only when no contact matches
  yet; context.traits update the contact.
- Page and screen calls are not used.
"""

from __future__ import annotations

from integrations.kinds.base import EVENT_FILTER, FIXED_MAILING_LIST, UNKNOWN_TRAITS
from integrations.kinds.common import ContactKind


class LoopsKind(ContactKind):
    kind = "loops"
    label = "Loops"
    description = "Contacts and mailing lists from identify; events that trigger loops from track."
    settings = (UNKNOWN_TRAITS, EVENT_FILTER, FIXED_MAILING_LIST)
    handles = ("identify", "track", "alias", "delete")
    create_requires = ("user_id", "email")

    def creation_requires(self, message):
        # Loops creates the contact for an event from its email when no identify came first.
        return ("email",) if message.type == "track" else self.create_requires

    def missing_reason(self, message, missing):
        if message.type == "track":
            return (
                "no contact matches this userId, and Loops needs an email (a valid address in properties, "
                "context.traits or at the top level) to create one for an event"
            )
        return super().missing_reason(message, missing)
