from __future__ import annotations

from integrations.kinds.base import Kind, Setting

SEGMENT_US = "https://api.segment.io"
SEGMENT_EU = "https://events.eu1.segmentapis.com"


class SegmentSourceKind(Kind):
    """Outbound: Switchyard sends captured contacts (Grow) and events (Reclaim) to Segment."""

    kind = "segment_source"
    label = "Segment source (outbound)"
    inbound = False
    description = "Sends Grow contacts and Reclaim events to a Segment workspace over the HTTP Tracking API."
    settings = (
        Setting("write_key", str, "", "The Write Key of the HTTP API source in Segment.", secret=True),
        Setting(
            "endpoint",
            str,
            SEGMENT_US,
            f"Tracking API base URL: {SEGMENT_US} (US), {SEGMENT_EU} (EU), or any Segment-compatible host.",
        ),
        Setting("grow_enabled", bool, False, "Send captured contacts as identify calls."),
        Setting("reclaim_enabled", bool, False, "Send abandonment events as track calls."),
        Setting("send_delay_minutes", int, 15, "Minutes to wait after capture before a contact is sent."),
    )
