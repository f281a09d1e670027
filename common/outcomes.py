"""How applying one message can end other than "done": shared by every app that applies messages.

The drain (integrations) records each as an inbox status. Lower apps (contacts, affiliates)
raise them from their services without knowing about the inbox.
"""

from __future__ import annotations


class Skip(Exception):
    """The message is valid but is not applied here (filtered, not eligible). Not retried."""


class Wait(Skip):
    """Valid, but about someone nobody has identified yet (an anonymous visitor, an alias ahead of
    its identify). The row waits and is applied again once an identify names one of its ids."""


class Refuse(Exception):
    """A partner rule refuses the message as sent (a missing required id or email). Permanent:
    retrying will not help, and it is shown apart from real errors."""
