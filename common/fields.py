"""Model fields shared by every app.

`JSONField` is Django's, read with orjson. The drain reads a JSON value for every inbox row
(its payload) and several for every contact it loads (properties, stamps, raw traits); with
the standard library's json that was about a tenth of the drain's Python time.
"""

from __future__ import annotations

import re

import orjson
from django.db import models
from django.db.models.fields.json import KeyTransform

# orjson reads integers beyond 64 bits as floats; a value holding one is read by json instead,
# so no digit is ever lost. (A long digit run inside a string only costs the faster path.)
_LONG_DIGITS = re.compile(r"\d{20}")


class JSONField(models.JSONField):
    def from_db_value(self, value, expression, connection):
        if (
            not isinstance(value, str)
            or self.decoder is not None
            or isinstance(expression, KeyTransform)
            or _LONG_DIGITS.search(value)
        ):
            return super().from_db_value(value, expression, connection)
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return super().from_db_value(value, expression, connection)

    def deconstruct(self):
        # Migrations see Django's own field: the column and its behaviour are the same.
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.JSONField", args, kwargs
