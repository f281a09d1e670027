"""Whether a trigger surveys its contact: the rules, in the order their reasons are given.

1. `suppressed`: the contact was erased, or their address or userId is suppressed (erased,
   uploaded, bounced, complained);
2. `unsubscribed`: they unsubscribed from marketing email;
3. `filtered`: no email address, or outside the campaign's audience;
4. `recently_surveyed`: with "not surveyed in the last N days", any campaign surveyed them
   within N days before this survey's time;
5. `throttled`: this campaign surveys them within `throttle_days` of this one (before or
   after: a delayed survey counts from its due time), or any campaign within the built-in
   limit (SURVEY_CONTACT_LIMIT_HOURS, 24: Promoter's one survey a day per contact);
6. `sampled_out`: outside the campaign's sample.

"Surveyed" means a dispatch that is scheduled, sent or answered, at its send time (or due time
while it waits). A trigger that passes is scheduled at its event's time plus the campaign's
delay, and counts for the triggers after it, in the same chunk too.

Sampling is decided by a hash of the campaign and the message (its contact, event name and
timestamp), not at random: a re-drained or replayed message gets the same answer, and raising
the percent keeps everyone who was in.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings

from campaigns.audience import Audience
from campaigns.surveys.models import Campaign, Reason


def contact_limit() -> timedelta:
    hours = float(getattr(settings, "SURVEY_CONTACT_LIMIT_HOURS", 24) or 0)
    return timedelta(hours=hours)


def sample_point(campaign_id: int, contact_key: str, name: str, timestamp: datetime) -> float:
    """Where this message falls in [0, 100): stable for the same campaign and message."""
    text = f"{campaign_id}|{contact_key}|{name}|{timestamp.isoformat()}"
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * 100


def sampled_in(campaign: Campaign, contact_key: str, name: str, timestamp: datetime) -> bool:
    percent = campaign.sample_percent
    if percent >= 100:
        return True
    return sample_point(campaign.pk, contact_key, name, timestamp) < percent


@dataclass
class History:
    """The surveys of a chunk's contacts: (campaign id, when) per contact, added to as triggers pass."""

    by_contact: dict[int, list[tuple[int, datetime]]] = field(default_factory=dict)

    def add(self, contact_id: int, campaign_id: int, at: datetime) -> None:
        self.by_contact.setdefault(contact_id, []).append((campaign_id, at))

    def surveys(self, contact_id: int) -> list[tuple[int, datetime]]:
        return self.by_contact.get(contact_id, [])


@dataclass(frozen=True)
class Refusal:
    reason: str
    note: str = ""


def refusal(
    campaign: Campaign,
    *,
    audience: Audience,
    contact,
    suppression: str | None,
    history: History,
    at: datetime,
    sample_key: tuple[str, str, datetime],
) -> Refusal | None:
    """None when the trigger surveys the contact at `at`; else the reason and its detail.

    `suppression` is the reason of a suppression of the contact's address or userId, if any.
    """
    if contact is None:
        return Refusal(Reason.SUPPRESSED, "the contact was erased")
    if suppression and suppression != "unsubscribed":
        return Refusal(Reason.SUPPRESSED, f"suppressed: {suppression}")
    if suppression == "unsubscribed" or not contact.subscribed:
        return Refusal(Reason.UNSUBSCRIBED, "unsubscribed from email")
    if not contact.email:
        return Refusal(Reason.FILTERED, "no email address")
    why = audience.why_not(contact)
    if why:
        return Refusal(Reason.FILTERED, why)
    surveys = history.surveys(contact.pk)
    if campaign.not_surveyed_days:
        window = timedelta(days=campaign.not_surveyed_days)
        recent = [when for _campaign, when in surveys if at - window < when <= at]
        if recent:
            return Refusal(
                Reason.RECENTLY_SURVEYED,
                f"surveyed on {max(recent):%Y-%m-%d %H:%M} UTC, within {campaign.not_surveyed_days} day(s)",
            )
    if campaign.throttle_days:
        window = timedelta(days=campaign.throttle_days)
        near = [when for other, when in surveys if other == campaign.pk and abs(at - when) < window]
        if near:
            return Refusal(
                Reason.THROTTLED,
                f"this campaign surveys them on {max(near):%Y-%m-%d %H:%M} UTC; throttle {campaign.throttle_days} day(s)",
            )
    limit = contact_limit()
    if limit:
        near = [when for _other, when in surveys if abs(at - when) < limit]
        if near:
            hours = limit.total_seconds() / 3600
            return Refusal(
                Reason.THROTTLED,
                f"surveyed on {max(near):%Y-%m-%d %H:%M} UTC; at most one survey per {hours:g} hours per contact",
            )
    if not sampled_in(campaign, *sample_key):
        return Refusal(Reason.SAMPLED_OUT, f"outside the {campaign.sample_percent}% sample")
    return None
