from __future__ import annotations

from integrations.kinds.base import EVENT_FILTER, FIXED_MAILING_LIST, UNKNOWN_TRAITS
from integrations.kinds.common import ContactKind
from integrations.kinds.refersion import AffiliateOrders


class SegmentKind(AffiliateOrders, ContactKind):
    """Every behaviour, with the strictest identity rules off: any id may create a contact."""

    kind = "segment"
    label = "Segment (all behaviours)"
    description = (
        "Identify creates or updates contacts from userId or email; track, page and screen add "
        "to the timeline; alias merges; delete erases and suppresses; orders are attributed to affiliates."
    )
    settings = (UNKNOWN_TRAITS, EVENT_FILTER, FIXED_MAILING_LIST)
