"""What happened to email, for the features above the engine (loops, surveys, webhooks).

Receivers run in the worker that sent (or in the webhook request), after the send's fields
are set on the instance; the queue writes them right after the batch.
"""

from __future__ import annotations

from django.dispatch import Signal

# An email was accepted by the server. kwargs: send (EmailSend, status "sent").
email_sent = Signal()

# The ESP reported a bounce. kwargs: send (EmailSend or None when it could not be matched),
# contact (Contact or None), email (str), hard (bool: a hard bounce, or soft bounces past the limit).
email_bounced = Signal()

# The person marked an email as spam. kwargs: send (EmailSend or None), contact (or None), email.
email_complained = Signal()

# Unsubscribes go through contacts.services.contact_unsubscribe, which sends
# contacts.signals.contacts_unsubscribed (the outbound side turns it into an "Unsubscribed" track).
