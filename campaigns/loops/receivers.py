"""What loops do when something happens elsewhere (connected in campaigns.loops.setup.ready).

- contacts.events_recorded: start and exit loops (campaigns.loops.services.loop_events_apply).
- contacts.contacts_unsubscribed: the person's running enrolments end as "unsubscribed" and
  their waiting step is skipped.
- contacts.contacts_merged: enrolments follow the merged contact.
- contacts.contact_erased: enrolments stay for the loop's figures, without the trigger's data.
- the email engine's email_sent: the step counts as emailed (once per step, however often the
  signal comes).
"""

from __future__ import annotations

from django.db.models import F

from campaigns.loops.models import Enrolment, EnrolmentStatus, parse_step_key
from campaigns.loops.services import enrolments_end, loop_events_apply
from campaigns.loops.stats import Tally


def on_events_recorded(sender, events, **kwargs) -> None:
    loop_events_apply(events=events)


def on_contacts_unsubscribed(sender, contact_ids, reason="", **kwargs) -> None:
    enrolments_end(
        queryset=Enrolment.objects.filter(contact_id__in=list(contact_ids)),
        status=EnrolmentStatus.UNSUBSCRIBED,
        reason=reason or "unsubscribed",
    )


def on_contacts_merged(sender, source_pk, target_pk, **kwargs) -> None:
    Enrolment.objects.filter(contact_id=source_pk).update(contact_id=target_pk)


def on_contact_erased(sender, contact_pks=(), **kwargs) -> None:
    # Not counted in the erasure record's figure, which counts redacted inbox rows.
    if contact_pks:
        Enrolment.objects.filter(contact_id__in=list(contact_pks)).update(event={})


def on_email_sent(sender, send=None, **kwargs) -> None:
    if send is None or getattr(send, "purpose", "") != "loop":
        return
    parsed = parse_step_key(send.key)
    if parsed is None:
        return
    loop_id, enrolment_id, position = parsed
    counted = Enrolment.objects.filter(pk=enrolment_id, sent_position__lt=position).update(
        emails_sent=F("emails_sent") + 1, sent_position=position
    )
    if counted:
        tally = Tally()
        tally.add(loop_id, "emailed")
        tally.save()
