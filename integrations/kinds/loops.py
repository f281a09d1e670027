from __future__ import annotations

from integrations.kinds.base import EVENT_FILTER, FIXED_MAILING_LIST, UNKNOWN_TRAITS
from integrations.kinds.common import ContactKind


class LoopsKind(ContactKind):
    """Loops: a contact is created only with email and userId; matched by userId, else email.

    Track needs an email only when the contact does not exist yet; context.traits update it.
    """

    kind = "loops"
    label = "Loops"
    description = "Contacts and mailing lists from identify; events that trigger loops from track."
    settings = (UNKNOWN_TRAITS, EVENT_FILTER, FIXED_MAILING_LIST)
    create_requires = ("user_id", "email")

    def creation_requires(self, message):
        # Loops creates the contact for an event from its email when no identify came first.
        return ("email",) if message.type == "track" else self.create_requires

    def missing_reason(self, message, missing):
        if message.type == "track":
            return (
                "no contact matches this userId, and Loops needs an email (in properties, "
                "context.traits or at the top level) to create one for an event"
            )
        return super().missing_reason(message, missing)

    def page(self, batch, message):
        from integrations.kinds.base import Skip

        raise Skip("Loops does not use page or screen calls")
