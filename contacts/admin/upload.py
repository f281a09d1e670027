"""CSV upload of suppressions: the form and the reader."""

from __future__ import annotations

import csv
import io
import re

from django import forms

from contacts.models import (
    SuppressionReason,
)

MD5_RE = re.compile(r"^[0-9a-fA-F]{32}$")


# --- suppression and erasure ------------------------------------------------------------------------
class SuppressionUploadForm(forms.Form):
    file = forms.FileField(
        help_text="A CSV file: a column named email (plain addresses) or md5 (lowercase-email MD5 hashes). "
        "Without a header, each row's first cell is read as an email or an MD5."
    )
    reason = forms.ChoiceField(
        choices=SuppressionReason.choices, initial=SuppressionReason.UPLOADED, help_text="Recorded on new rows."
    )
    keep_plain = forms.BooleanField(
        required=False, help_text="Also keep plain email addresses (otherwise only their MD5 is stored)."
    )
    note = forms.CharField(required=False, max_length=255, help_text="Where the list came from, for the record.")


def read_suppression_csv(stream) -> tuple[list[str], list[str], int]:
    """(emails, md5s, invalid rows) from an uploaded CSV, with or without a header."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
    reader = csv.reader(text)
    emails: list[str] = []
    md5s: list[str] = []
    invalid = 0
    column = 0
    first = next(reader, None)
    if first is None:
        return emails, md5s, invalid
    names = [cell.strip().lower() for cell in first]
    header = next((n for n in ("email", "md5", "email_md5") if n in names), None)
    rows = reader if header is not None else _chain(first, reader)
    if header is not None:
        column = names.index(header)
    for row in rows:
        if len(row) <= column or not row[column].strip():
            continue
        value = row[column].strip()
        if "@" in value and " " not in value:
            emails.append(value)
        elif MD5_RE.match(value):
            md5s.append(value.lower())
        else:
            invalid += 1
    return emails, md5s, invalid


def _chain(first, rest):
    yield first
    yield from rest
