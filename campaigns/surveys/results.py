"""Survey results kept on the contact, as typed properties loop audiences can use.

`<metric>_score` (number) and `<metric>_category` (text) hold the latest answer, e.g.
`nps_score` 9 and `nps_category` "promoter"; `last_surveyed_at` (date) when a survey was last
sent. They are written through contacts.services.contact_update, as a staff edit would be:
stamped now (an older Segment message cannot overwrite them) and in the contact's history.
Each contact is locked first, so a drain applying a message to the same person waits instead
of losing one of the two writes.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from campaigns.surveys.scales import property_prefix
from contacts.models import Contact, PropertyDefinition, PropertyType
from contacts.services import contact_update

LAST_SURVEYED = "last_surveyed_at"
_defined: set[str] = set()


def result_properties(metric: str) -> dict[str, str]:
    prefix = property_prefix(metric)
    return {f"{prefix}_score": PropertyType.NUMBER, f"{prefix}_category": PropertyType.TEXT}


def definitions_ensure(types: dict[str, str]) -> None:
    """Define the properties (once per process) so they are typed in the admin and audiences."""
    missing = {name: kind for name, kind in types.items() if name not in _defined}
    if not missing:
        return
    PropertyDefinition.objects.bulk_create(
        [
            PropertyDefinition(name=name, type=kind, source="surveys", description="Set by survey campaigns.")
            for name, kind in missing.items()
        ],
        ignore_conflicts=True,
    )
    _defined.update(missing)


@transaction.atomic
def contacts_properties_set(*, values: dict[int, dict], actor: str) -> int:
    """Set properties on contacts ({contact id: {name: value}}), each under its row lock, in id
    order. Returns how many contacts were changed."""
    if not values:
        return 0
    changed = 0
    for contact in Contact.objects.select_for_update().filter(pk__in=list(values)).order_by("pk"):
        wanted = values[contact.pk]
        if all(contact.properties.get(name) == value for name, value in wanted.items()):
            continue
        contact_update(contact=contact, properties=wanted, actor=actor)
        changed += 1
    return changed


def response_result_set(*, contact_id: int | None, metric: str, score: int, category: str, actor: str) -> None:
    if contact_id is None:
        return
    prefix = property_prefix(metric)
    definitions_ensure(result_properties(metric))
    contacts_properties_set(
        values={contact_id: {f"{prefix}_score": score, f"{prefix}_category": category}}, actor=actor
    )


def surveyed_set(*, when: dict[int, datetime], actor: str = "survey sent") -> int:
    """last_surveyed_at for each contact ({contact id: when}), never moving it back."""
    if not when:
        return 0
    definitions_ensure({LAST_SURVEYED: PropertyType.DATE})
    values = {pk: {LAST_SURVEYED: at.isoformat()} for pk, at in when.items()}
    current = dict(Contact.objects.filter(pk__in=list(values)).values_list("pk", f"properties__{LAST_SURVEYED}"))
    values = {pk: v for pk, v in values.items() if not (current.get(pk) and str(current[pk]) >= v[LAST_SURVEYED])}
    return contacts_properties_set(values=values, actor=actor)
