"""What affiliates do when something happens to contacts (connected in affiliates.apps.ready).

- contacts.contact_erased: the erased person's affiliate loses its personal data, orders they
  placed lose who placed them, their clicks lose their ids. Not counted in the erasure
  record's figure, which counts redacted inbox rows.
- contacts.contacts_merged: affiliates and orders follow the merged contact.
"""

from __future__ import annotations

from affiliates.services import affiliates_erase, contacts_repoint


def on_contact_erased(sender, user_ids=(), emails=(), anonymous_ids=(), contact_pks=(), **kwargs) -> None:
    affiliates_erase(
        user_ids=set(user_ids), emails=set(emails), anonymous_ids=set(anonymous_ids), contact_pks=list(contact_pks)
    )


def on_contacts_merged(sender, source_pk, target_pk, **kwargs) -> None:
    contacts_repoint(source_pk=source_pk, target_pk=target_pk)
