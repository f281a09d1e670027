"""Refersion (seeds/004): affiliates from identify (name, email, address); delete removes them.

The key is publickey.secretkey. Until the affiliates app lands, identify keeps the person as a
contact and delete erases.
"""

from __future__ import annotations

from integrations.kinds.base import UNKNOWN_TRAITS
from integrations.kinds.common import ContactKind


class RefersionKind(ContactKind):
    kind = "refersion"
    label = "Refersion"
    description = "Affiliates from identify (name, email, address); delete removes them."
    settings = (UNKNOWN_TRAITS,)
