"""What happened to contacts, for the apps above (integrations, campaigns, affiliates).

Contacts never import those apps: they listen here. Receivers run inside the sender's
transaction, so what they write commits or rolls back with it.
"""

from __future__ import annotations

from django.dispatch import Signal

# A person was erased (GDPR). kwargs: user_ids, emails, anonymous_ids (sets of str), the erased
# contact pks. Receivers erase or redact what they hold about these ids, and return how many
# records they redacted (an int), which the erasure record counts.
contact_erased = Signal()

# An alias folded one contact into another. kwargs: source_pk, target_pk. Receivers repoint
# rows that named the source.
contacts_merged = Signal()

# A contact stopped receiving marketing email (staff, the API, an unsubscribe link, Segment).
# kwargs: contact_ids (list of int), reason (str).
contacts_unsubscribed = Signal()
