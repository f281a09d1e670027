# Models live in each feature's package; importing them here lets Django find them under the
# "campaigns" app label.
from campaigns.email.models import EmailEvent, EmailRateWindow, EmailSend, EmailTemplate

__all__ = ["EmailEvent", "EmailRateWindow", "EmailSend", "EmailTemplate"]
