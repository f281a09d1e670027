# Models live in each feature's package; importing them here lets Django find them under the
# "campaigns" app label.
from campaigns.email.models import EmailEvent, EmailRateWindow, EmailSend, EmailTemplate
from campaigns.loops.models import Enrolment, Loop, LoopDay, LoopStep

__all__ = ["EmailEvent", "EmailRateWindow", "EmailSend", "EmailTemplate", "Enrolment", "Loop", "LoopDay", "LoopStep"]
