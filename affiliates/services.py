"""Affiliate writes that act on the database at once: staff create and edit affiliates and change
their status, clicks are recorded, conversions are approved or denied (by staff or after an
offer's N days), and erased people's data goes.

Views, admin actions, the API and the work queue all call these. What happened is announced on
affiliates.signals for the apps above.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q

from affiliates.codes import click_id_new, code_new
from affiliates.models import (
    Affiliate,
    AffiliateStatus,
    Click,
    ClickSource,
    Conversion,
    ConversionStatus,
    Offer,
)
from affiliates.signals import EVENT_NAME, ApprovedConversion, conversion_approved
from common import clock
from contacts.models import Contact
from contacts.services import contact_event_record

# Staff status actions: the statuses each one moves from.
STATUS_ACTIONS = {
    AffiliateStatus.ACTIVE: (AffiliateStatus.PENDING, AffiliateStatus.DENIED, AffiliateStatus.DISABLED),
    AffiliateStatus.DENIED: (AffiliateStatus.PENDING,),
    AffiliateStatus.DISABLED: (AffiliateStatus.PENDING, AffiliateStatus.ACTIVE),
}
STAFF_FIELDS = ("email", "user_id", "first_name", "last_name", "name", "address", "status", "offer", "referral_code")
AUTO_APPROVAL_BATCH = 500


class AffiliateError(ValueError):
    """A change staff asked for that the rules refuse; `field` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# --- affiliates ------------------------------------------------------------------------------------
def contact_for(*, email: str | None, user_id: str | None) -> Contact | None:
    """The contact with the same userId, else the same email."""
    if user_id:
        found = Contact.objects.filter(user_id=user_id).first()
        if found is not None:
            return found
    if email:
        return Contact.objects.filter(email=email.lower()).first()
    return None


def affiliates_link_contacts(affiliates: Iterable[Affiliate]) -> int:
    """Link affiliates without a contact to the contact with their userId or email, if one has
    appeared since (a contact made later by another integration or by staff). One query for the
    lot, and a write only for those found. Returns how many were linked."""
    unlinked = [a for a in affiliates if a.contact_id is None and (a.email or a.user_id)]
    if not unlinked:
        return 0
    user_ids = {a.user_id for a in unlinked if a.user_id}
    emails = {a.email for a in unlinked if a.email}
    found = Contact.objects.filter(Q(user_id__in=user_ids) | Q(email__in=emails)).only("pk", "user_id", "email")
    by_user = {c.user_id: c for c in found if c.user_id}
    by_email = {c.email: c for c in found if c.email}
    linked = []
    for affiliate in unlinked:
        contact = by_user.get(affiliate.user_id) or by_email.get(affiliate.email)
        if contact is not None:
            affiliate.contact_id = contact.pk
            linked.append(affiliate)
    if linked:
        Affiliate.objects.bulk_update(linked, ["contact"])
    return len(linked)


def contact_affiliates_link(contact: Contact) -> int:
    """The contact's page: affiliates with its userId or email that are not linked yet."""
    query = Q()
    if contact.user_id:
        query |= Q(user_id=contact.user_id)
    if contact.email:
        query |= Q(email=contact.email)
    if not query:
        return 0
    return Affiliate.objects.filter(query, contact__isnull=True, erased_at__isnull=True).update(contact=contact)


def _unique_code() -> str:
    code = code_new()
    while Affiliate.objects.filter(referral_code=code).exists():
        code = code_new()
    return code


@transaction.atomic
def affiliate_create(*, actor: str, **fields: Any) -> Affiliate:
    """An affiliate added by staff. A referral code is made when none is given; the contact with
    the same userId or email is linked."""
    unknown = set(fields) - set(STAFF_FIELDS)
    if unknown:
        raise TypeError(f"affiliate_create() got unknown fields: {', '.join(sorted(unknown))}")
    now = clock.now()
    affiliate = Affiliate(source=actor[:200], created_at=now, updated_at=now, status_changed_at=now)
    _assign(affiliate, fields, now)
    if not affiliate.referral_code:
        affiliate.referral_code = _unique_code()
    affiliate.contact = contact_for(email=affiliate.email, user_id=affiliate.user_id)
    _save(affiliate)
    return affiliate


@transaction.atomic
def affiliate_update(*, affiliate: Affiliate, actor: str, **fields: Any) -> Affiliate:
    """Change only what is given; each change is stamped now, so an older identify arriving
    later does not undo it."""
    unknown = set(fields) - set(STAFF_FIELDS)
    if unknown:
        raise TypeError(f"affiliate_update() got unknown fields: {', '.join(sorted(unknown))}")
    now = clock.now()
    _assign(affiliate, fields, now)
    if affiliate.contact_id is None:
        affiliate.contact = contact_for(email=affiliate.email, user_id=affiliate.user_id)
    affiliate.updated_at = now
    _save(affiliate)
    return affiliate


def _assign(affiliate: Affiliate, fields: dict, now) -> None:
    from contacts.stamps import stamp

    for name, value in fields.items():
        if name in ("email", "user_id"):
            value = (value or "").strip() or None
            if name == "email" and value:
                value = value.lower()
        elif name == "address":
            value = value or {}
        elif name == "status":
            if value != affiliate.status:
                affiliate.status_changed_at = now
        elif name == "offer":
            pass
        elif name == "referral_code":
            value = (value or "").strip().upper()
        else:
            value = value or ""
        setattr(affiliate, name, value)
        affiliate.stamps[name] = stamp(now)


def _save(affiliate: Affiliate) -> None:
    try:
        with transaction.atomic():
            affiliate.save()
    except IntegrityError as error:
        text = str(error).lower()
        for name in ("referral_code", "email", "user_id"):
            if name in text:
                raise AffiliateError(name, f"another affiliate has this {name.replace('_', ' ')}") from None
        raise


@dataclass
class StatusResult:
    changed: int = 0
    unchanged: dict[str, int] = field(default_factory=dict)  # current status → how many were left

    def text(self, verb: str) -> str:
        parts = [f"{verb} {self.changed} affiliate(s)"]
        parts += [f"{n} left as they were ({status})" for status, n in sorted(self.unchanged.items())]
        return "; ".join(parts) + "."


@transaction.atomic
def affiliates_set_status(*, affiliates: Iterable[Affiliate], status: str, actor: str) -> StatusResult:
    """Approve (active), deny or disable: only from the statuses that action moves from."""
    allowed = STATUS_ACTIONS[status]
    pks = [a.pk for a in affiliates]
    result = StatusResult()
    now = clock.now()
    changed = []
    for affiliate in Affiliate.objects.filter(pk__in=pks).select_for_update().order_by("pk"):
        if affiliate.status in allowed:
            affiliate.status, affiliate.status_changed_at, affiliate.updated_at = status, now, now
            changed.append(affiliate)
        else:
            result.unchanged[affiliate.status] = result.unchanged.get(affiliate.status, 0) + 1
    Affiliate.objects.bulk_update(changed, ["status", "status_changed_at", "updated_at"])
    result.changed = len(changed)
    return result


# --- clicks -------------------------------------------------------------------------------------
def click_record(*, affiliate: Affiliate, referrer: str = "", user_agent: str = "") -> Click:
    """One visit through the affiliate's referral link."""
    return Click.objects.create(
        affiliate=affiliate,
        click_id=click_id_new(),
        clicked_at=clock.now(),
        source=ClickSource.LINK,
        referrer=referrer[:2000],
        user_agent=user_agent[:500],
    )


# --- conversions --------------------------------------------------------------------------------
@dataclass
class DecisionResult:
    done: list[Conversion] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)  # why → how many

    def text(self, verb: str) -> str:
        parts = [f"{verb} {len(self.done)} conversion(s)"]
        parts += [f"{n} not: {why}" for why, n in sorted(self.refused.items())]
        return "; ".join(parts) + "."


def _lock(ids: Iterable[int]) -> list[Conversion]:
    return list(
        Conversion.objects.filter(pk__in=list(ids))
        .select_related("affiliate")
        .select_for_update(of=("self",))
        .order_by("pk")
    )


def _refuse(result: DecisionResult, why: str) -> None:
    result.refused[why] = result.refused.get(why, 0) + 1


@transaction.atomic
def conversions_approve(*, ids: Iterable[int], actor: str) -> DecisionResult:
    """Approve pending conversions: record "Affiliate Conversion Approved" on the affiliate's
    contact (loops start from it) and announce them on affiliates.signals.conversion_approved."""
    result = DecisionResult()
    now = clock.now()
    for conversion in _lock(ids):
        if conversion.status != ConversionStatus.PENDING:
            _refuse(result, f"only a pending conversion can be approved; {conversion.status} ones cannot")
            continue
        conversion.status, conversion.approved_at, conversion.decided_at = ConversionStatus.APPROVED, now, now
        conversion.decided_by = actor[:100]
        result.done.append(conversion)
    Conversion.objects.bulk_update(result.done, ["status", "approved_at", "decided_at", "decided_by"])
    _announce(result.done, actor)
    return result


@transaction.atomic
def conversions_deny(*, ids: Iterable[int], actor: str) -> DecisionResult:
    result = DecisionResult()
    now = clock.now()
    for conversion in _lock(ids):
        if conversion.status == ConversionStatus.APPROVED:
            _refuse(result, "approved conversions cannot be denied; only a refund reverses them")
            continue
        if conversion.status != ConversionStatus.PENDING:
            _refuse(result, f"only a pending conversion can be denied; {conversion.status} ones cannot")
            continue
        conversion.status, conversion.decided_at, conversion.decided_by = ConversionStatus.DENIED, now, actor[:100]
        conversion.reason = f"denied by {actor}"[:300]
        result.done.append(conversion)
    Conversion.objects.bulk_update(result.done, ["status", "decided_at", "decided_by", "reason"])
    return result


def _announce(conversions: list[Conversion], actor: str) -> None:
    if not conversions:
        return
    approved = []
    contacts = Contact.objects.in_bulk(
        {c.affiliate.contact_id for c in conversions if c.affiliate and c.affiliate.contact_id}
    )
    for conversion in conversions:
        affiliate = conversion.affiliate
        record = ApprovedConversion(
            conversion_id=conversion.pk,
            order_id=conversion.order_id,
            amount=conversion.amount,
            currency=conversion.currency,
            commission=conversion.commission,
            approved_at=conversion.approved_at,
            affiliate_id=conversion.affiliate_id,
            referral_code=affiliate.referral_code if affiliate else "",
            affiliate_email=(affiliate.email or "") if affiliate else "",
            affiliate_user_id=(affiliate.user_id or "") if affiliate else "",
            contact_id=affiliate.contact_id if affiliate else None,
            buyer_contact_id=conversion.buyer_contact_id,
            approved_by=actor[:100],
            event_id=None,
        )
        contact = contacts.get(record.contact_id) if record.contact_id else None
        if contact is not None:
            event = contact_event_record(
                contact=contact, name=EVENT_NAME, properties=record.properties(), timestamp=conversion.approved_at
            )
            record = ApprovedConversion(**{**_fields(record), "event_id": event.pk})
        approved.append(record)
    conversion_approved.send(sender=Conversion, conversions=approved)


def _fields(record: ApprovedConversion) -> dict:
    return {name: getattr(record, name) for name in ApprovedConversion.__slots__}


def conversions_auto_approve(*, max_seconds: float = 5.0) -> dict[str, int]:
    """The work-queue runner "affiliates": approve the pending conversions of active affiliates
    whose offer approves by itself, once its days have passed since they were recorded."""
    now = clock.now()
    approved = 0
    for offer in Offer.objects.filter(auto_approve_days__isnull=False):
        due = Conversion.objects.filter(
            offer=offer,
            status=ConversionStatus.PENDING,
            created_at__lte=now - timedelta(days=offer.auto_approve_days),
            affiliate__status=AffiliateStatus.ACTIVE,
        )
        with transaction.atomic():
            ids = list(
                due.order_by("created_at")
                .select_for_update(of=("self",), skip_locked=True)
                .values_list("pk", flat=True)[:AUTO_APPROVAL_BATCH]
            )
            if ids:
                approved += len(conversions_approve(ids=ids, actor="auto-approval").done)
    return {"approved": approved}


# --- erasure and merges (contacts.signals) ------------------------------------------------------------
ERASED_AFFILIATE = {
    "user_id": None,
    "email": None,
    "name": "",
    "first_name": "",
    "last_name": "",
    "address": {},
    "properties": {},
    "properties_changed_at": {},
    "stamps": {},
    "contact": None,
    "status": AffiliateStatus.DISABLED,
}


@transaction.atomic
def affiliates_erase(
    *, user_ids: set[str], emails: set[str], anonymous_ids: set[str], contact_pks: Iterable[int]
) -> int:
    """A person was erased (GDPR): the affiliate they were loses its personal data (and is
    disabled; its conversions stay, for accounting, with their amounts); orders they placed
    lose who placed them; their clicks lose the visitor's ids and browser. Returns how many
    affiliates were erased."""
    now = clock.now()
    pks = list(contact_pks)
    emails = {e.lower() for e in emails}
    who = Q(contact_id__in=pks) | Q(user_id__in=user_ids) | Q(email__in=emails)
    affiliates = list(Affiliate.objects.filter(who).values_list("pk", flat=True))
    if affiliates:
        Affiliate.objects.filter(pk__in=affiliates).update(**ERASED_AFFILIATE, erased_at=now, updated_at=now)
        from affiliates.models import Coupon

        Coupon.objects.filter(affiliate_id__in=affiliates).delete()
    ids = set(user_ids) | set(anonymous_ids)
    buyer = Q(buyer_contact_id__in=pks) | Q(buyer_user_id__in=user_ids) | Q(buyer_email__in=emails)
    Conversion.objects.filter(buyer).update(buyer_contact=None, buyer_user_id="", buyer_email="", buyer_anonymous_id="")
    if ids:
        Click.objects.filter(Q(anonymous_id__in=ids) | Q(user_id__in=ids)).update(
            anonymous_id="", user_id="", referrer="", user_agent=""
        )
    return len(affiliates)


def contacts_repoint(*, source_pk: int, target_pk: int) -> None:
    Affiliate.objects.filter(contact_id=source_pk).update(contact_id=target_pk)
    Conversion.objects.filter(buyer_contact_id=source_pk).update(buyer_contact_id=target_pk)
