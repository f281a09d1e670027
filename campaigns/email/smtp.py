"""Django's SMTP backend, telling the sender how far each message got.

A send that fails before the server has the message (refused connection, a 4xx to RCPT) is
safe to retry. One that fails after the body went out (the server's answer to DATA timed out,
or the connection dropped) may have been delivered: it must not be resent blindly. smtplib
raises SMTPServerDisconnected in both cases, so the connection records the phase itself: the
body counts as sent once the server has answered DATA with 354. It also keeps the server's
final answer ("250 2.0.0 Ok: queued as …") for the attempt log.

`EMAIL_URL=smtp://…` makes settings.EMAIL_BACKEND Django's SMTP backend; the email engine
uses this subclass in its place (campaigns.email.sending.connection), which behaves the same.
"""

from __future__ import annotations

import re
import smtplib
from functools import lru_cache

from django.conf import settings
from django.core.mail.backends.smtp import EmailBackend as DjangoSMTPBackend
from django.core.mail.message import sanitize_address

DJANGO_SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


class _PhaseMixin:
    body_sent = False
    last_reply: tuple[int, bytes] | None = None

    def mail(self, *args, **kwargs):
        self.body_sent, self.last_reply = False, None
        return super().mail(*args, **kwargs)

    def getreply(self):
        code, message = super().getreply()
        if code == 354:
            # DATA accepted: the body follows, and from now on the server may keep it.
            self.body_sent = True
        return code, message

    def data(self, msg):
        code, message = super().data(msg)
        self.last_reply = (code, message)
        return code, message


class PhaseSMTP(_PhaseMixin, smtplib.SMTP):
    pass


class PhaseSMTP_SSL(_PhaseMixin, smtplib.SMTP_SSL):  # noqa: N801 - smtplib's own spelling
    pass


# An address that needs no encoding or quoting: sanitize_address() would return it unchanged.
PLAIN_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+$")


@lru_cache(maxsize=64)
def _sanitized_sender(address: str, encoding: str) -> str:
    return sanitize_address(address, encoding)


def _sanitized(address: str, encoding: str) -> str:
    return address if PLAIN_ADDRESS.match(address) else sanitize_address(address, encoding)


class EmailBackend(DjangoSMTPBackend):
    """Django's SMTP backend; its connection records how far the last message got.

    `_send` is Django's, with the address parsing (about 40 µs an address) skipped where its
    answer is known: the sender is the same for every message, and a plain ASCII address needs
    no encoding."""

    def _send(self, email_message):
        if not email_message.recipients():
            return False
        encoding = email_message.encoding or settings.DEFAULT_CHARSET
        from_email = _sanitized_sender(email_message.from_email, encoding)
        recipients = [_sanitized(address, encoding) for address in email_message.recipients()]
        message = email_message.message()
        try:
            self.connection.sendmail(from_email, recipients, message.as_bytes(linesep="\r\n"))
        except smtplib.SMTPException:
            if not self.fail_silently:
                raise
            return False
        return True

    @property
    def connection_class(self):
        return PhaseSMTP_SSL if self.use_ssl else PhaseSMTP

    @property
    def body_sent(self) -> bool:
        return bool(self.connection is not None and self.connection.body_sent)

    @property
    def last_reply(self) -> str:
        if self.connection is None or self.connection.last_reply is None:
            return ""
        code, message = self.connection.last_reply
        return f"{code} {message.decode(errors='replace')}"
