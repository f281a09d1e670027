"""What surveys do when something happens elsewhere (connected in campaigns.surveys.setup.ready).

- contacts.events_recorded: triggers (campaigns.surveys.triggers.survey_events_apply).
- the email engine's email_sent: a survey email went: its dispatch is sent (one UPDATE), and
  the "surveys" runner is kicked for the follow-ups.
- email_bounced: a survey or reminder bounced: the `survey.bounced` webhook and the "bounce"
  notification.
- contacts.contacts_unsubscribed: waiting reminders and autoresponders are skipped; for people
  a campaign surveyed, the `contact.unsubscribed` webhook and the "unsubscribe" notification.
- contacts.contacts_merged: dispatches and responses follow the merged contact.
- contacts.contact_erased: the trigger events and comments of the erased are emptied; the rows
  stay, without the person, so the campaigns' figures stay true.
"""

from __future__ import annotations

from django.db.models import Q

from campaigns.email.models import EmailSend, SendStatus
from campaigns.email.services import email_sends_cancel
from campaigns.notifications.services import notify
from campaigns.surveys.models import DispatchStatus, SurveyDispatch, SurveyResponse, parse_key
from campaigns.surveys.triggers import survey_events_apply
from campaigns.webhooks.services import webhook_events_emit
from common.workqueue import kick_on_commit
from contacts.models import Contact

RUNNER = "surveys"


def on_events_recorded(sender, events, **kwargs) -> None:
    survey_events_apply(events=events)


def on_email_sent(sender, send=None, **kwargs) -> None:
    if send is None or getattr(send, "purpose", "") != "survey":
        return
    parsed = parse_key(send.key)
    if parsed is None or parsed[1] != "survey":
        return
    marked = SurveyDispatch.objects.filter(pk=parsed[0], status=DispatchStatus.SCHEDULED).update(
        status=DispatchStatus.SENT, sent_at=send.sent_at, followed_up=False
    )
    if marked:
        kick_on_commit(RUNNER)


def on_email_bounced(sender, send=None, contact=None, email="", hard=False, **kwargs) -> None:
    if send is None or getattr(send, "purpose", "") not in ("survey", "reminder"):
        return
    parsed = parse_key(send.key)
    dispatch = SurveyDispatch.objects.filter(pk=parsed[0]).select_related("campaign").first() if parsed else None
    if dispatch is None:
        return
    data = {
        "survey_id": dispatch.pk,
        "campaign": dispatch.campaign_id,
        "campaign_name": dispatch.campaign.name,
        "contact": dispatch.contact_id,
        "email": email or send.to,
        "hard": bool(hard),
        "purpose": send.purpose,
    }
    webhook_events_emit(events=[("survey.bounced", data)])
    kind = "hard" if hard else "soft"
    notify(
        notes=[
            (
                "bounce",
                dispatch.campaign_id,
                f"bounce:{send.pk}",
                f"{dispatch.campaign.name}: the {send.purpose} email to {data['email']} bounced ({kind}).",
            )
        ]
    )


def on_contacts_unsubscribed(sender, contact_ids, reason="", **kwargs) -> None:
    ids = list(contact_ids)
    email_sends_cancel(
        queryset=EmailSend.objects.filter(
            contact_id__in=ids, purpose__in=("reminder", "autoresponder"), status=SendStatus.SCHEDULED
        ),
        reason="unsubscribed",
    )
    surveyed = (
        SurveyDispatch.objects.filter(contact_id__in=ids, status__in=(DispatchStatus.SENT, DispatchStatus.RESPONDED))
        .values_list("contact_id", "campaign_id")
        .distinct()
    )
    by_contact: dict[int, set[int]] = {}
    for contact_id, campaign_id in surveyed:
        by_contact.setdefault(contact_id, set()).add(campaign_id)
    if not by_contact:
        return
    emails = dict(Contact.objects.filter(pk__in=list(by_contact)).values_list("pk", "email"))
    webhook_events_emit(
        events=[
            ("contact.unsubscribed", {"contact": pk, "email": emails.get(pk) or "", "reason": reason})
            for pk in sorted(by_contact)
        ]
    )
    notify(
        notes=[
            ("unsubscribe", campaign_id, f"unsubscribe:{pk}", f"{emails.get(pk) or f'contact {pk}'} unsubscribed.")
            for pk, campaigns in sorted(by_contact.items())
            for campaign_id in sorted(campaigns)
        ]
    )


def on_contacts_merged(sender, source_pk, target_pk, **kwargs) -> None:
    SurveyDispatch.objects.filter(contact_id=source_pk).update(contact_id=target_pk)
    SurveyResponse.objects.filter(contact_id=source_pk).update(contact_id=target_pk)


def on_contact_erased(sender, contact_pks=(), user_ids=(), **kwargs) -> None:
    pks = list(contact_pks)
    ids = [u for u in user_ids if u]
    if not pks and not ids:
        return
    SurveyDispatch.objects.filter(Q(contact_id__in=pks) | Q(contact__isnull=True, user_id__in=ids)).update(
        event={}, user_id="", opens=[]
    )
    SurveyResponse.objects.filter(contact_id__in=pks).update(comment="", email="")
