"""What surveys announce to the apps above them.

survey_responded: a survey was answered, or an answer changed. Sent inside the transaction
that saved the response, so a receiver's writes commit or roll back with it. kwargs:

- response: the SurveyResponse (score, category, comment, created_at, updated_at; its
  campaign and contact loaded; contact may be None when the person was erased);
- created: True for the first answer to this survey, False when it changed;
- changed: the fields that changed, a set of "score" and "comment" ({"score"} when created
  without a comment);
- properties: the 'Survey Responded' track's properties, ready to send:
  {"score", "category", "metric", "campaign", "campaign_name", "comment", "survey_id",
  "response_id"}.

The first answer is also recorded on the contact's timeline as the internal event
"Survey Responded" (contacts.services.contact_event_record, with the same properties), which
reaches contacts.signals.events_recorded: loops start from it, and the outbound Segment side
sends its "Survey Responded" track from there (keyed by the event, so once). A receiver that
sends Segment tracks should use one of the two, not both, or Segment gets the answer twice.
"""

from __future__ import annotations

from django.dispatch import Signal

survey_responded = Signal()
