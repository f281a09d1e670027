"""The message class the engine sends: Django's EmailMultiAlternatives, serialized faster and
with List-Unsubscribe folded the way mail providers read it.

Django builds its MIME tree with the standard library's compat32 policy, which runs every
header through email.header.Header (the slowest part of a send after rendering) and folds a
long header by breaking right after its colon ("List-Unsubscribe: " then the URLs on the next
line). Headers that are plain ASCII with no line break are written here as they are when they
fit, or folded after each comma-separated item (one URL per line) when they do not; anything
else (an encoded subject, a non-ASCII name) still goes through compat32. The multipart
boundary is set up front, so the generator does not search the whole message for a free one.
"""

from __future__ import annotations

import secrets
from email.policy import Compat32

from django.core.mail import EmailMultiAlternatives

# RFC 5322's hard limit for a line; a header under it that cannot be folded is sent whole.
MAX_LINE = 998


class MailPolicy(Compat32):
    def _fold(self, name, value, sanitize):
        if isinstance(value, str) and value.isascii() and "\r" not in value and "\n" not in value:
            line = f"{name}: {value}"
            if len(line) <= (self.max_line_length or MAX_LINE):
                return line + self.linesep
            items = value.split(", ")
            if len(items) > 1 and all(len(item) + 2 <= MAX_LINE for item in items):
                return f"{name}: " + ("," + self.linesep + " ").join(items) + self.linesep
            if len(line) <= MAX_LINE:
                return line + self.linesep
        return super()._fold(name, value, sanitize)


POLICY = MailPolicy()


class Email(EmailMultiAlternatives):
    def message(self, *args, **kwargs):
        msg = super().message(*args, **kwargs)
        msg.policy = POLICY
        if msg.is_multipart():
            msg.set_boundary(f"=_sy_{secrets.token_hex(12)}")
        return msg
