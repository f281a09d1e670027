"""Per-value stamps: when each field or property of a contact was last written.

Each value carries the time of the message (or staff edit) that wrote it, so a late, older
message never overwrites a newer value, whatever order messages arrive in. Stamps are ISO
strings of fixed width, always UTC, so they compare correctly as strings.

Keys: a field or property name (`email`, `favoriteColor`), `~name` for a raw trait kept
without a definition, and `@name` for which integration last assigned a property (so a partner
that unassigns "its" properties never touches another partner's data).
"""

from __future__ import annotations

from datetime import UTC, datetime

# The last stamp made: a message's traits all carry its one timestamp, so most calls repeat
# the one before. One tuple, replaced whole, so threads never read a half-updated pair.
_last: tuple[datetime | None, str] = (None, "")


def stamp(ts: datetime) -> str:
    global _last
    last = _last
    if last[0] is ts:
        return last[1]
    text = ts.astimezone(UTC).isoformat(timespec="microseconds")
    _last = (ts, text)
    return text


def is_newer(stamps: dict, key: str, ts: datetime) -> bool:
    """True if `ts` is at least as new as what last wrote `key`."""
    previous = stamps.get(key)
    return previous is None or previous <= stamp(ts)


def writer_key(name: str) -> str:
    return f"@{name}"
