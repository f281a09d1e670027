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
        # An event can create a contact from an email alone; identify needs both ids.
        return ("email",) if message.type == "track" else self.create_requires
