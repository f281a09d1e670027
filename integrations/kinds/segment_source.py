"""Retention.com (seeds/000): an outbound Segment source fed by the visitor capture script.

Staff configure where and what it sends (the Write Key, the endpoint, Grow and Reclaim, a Group
ID, the delay, the custom sync filters, the other apps' events). Its capture script's messages
are stored in the same inbox as Segment's calls and applied by this kind
(integrations/capture/kind.py): visitors, contacts, and the outbox rows that the outbound worker
sends (integrations/outbound/).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from integrations.capture.kind import CaptureKind
from integrations.kinds.base import Setting

SEGMENT_US = "https://api.segment.io"
SEGMENT_EU = "https://events.eu1.segmentapis.com"
DEFAULT_CAPTURE_RATE_LIMIT = 120


@dataclass(frozen=True)
class EndpointSetting(Setting):
    """An http(s) base URL, without a path past the host (the client adds /v1/batch)."""

    def parse(self, raw: Any) -> Any:
        value = super().parse(raw)
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{self.name} must be an http:// or https:// URL, not {str(raw)[:100]!r}")
        if parts.query or parts.fragment or parts.path.rstrip("/") not in ("", "/v1"):
            raise ValueError(f"{self.name} must be the host's base URL, e.g. {SEGMENT_EU}, not {str(raw)[:100]!r}")
        return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class OriginsSetting(Setting):
    """Comma-separated origins (scheme://host[:port]), as a browser sends them in Origin."""

    def parse(self, raw: Any) -> Any:
        value = super().parse(raw)
        origins = []
        for item in (part.strip() for part in str(value).split(",")):
            if not item:
                continue
            parts = urlsplit(item)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
                raise ValueError(f"{self.name}: {item[:100]!r} is not an origin like https://shop.example")
            origins.append(f"{parts.scheme}://{parts.netloc}".lower())
        return ",".join(dict.fromkeys(origins))


def _list(help_text: str, name: str) -> Setting:
    return Setting(name, str, "", f"{help_text} Comma-separated; empty lets everyone through.")


class SegmentSourceKind(CaptureKind):
    """Outbound: Switchyard sends captured contacts (Grow) and events (Reclaim) to Segment."""

    kind = "segment_source"
    label = "Segment source (outbound)"
    inbound = False
    description = (
        "Sends Grow contacts and Reclaim events, captured on your site by its script, to a Segment "
        "workspace over the HTTP Tracking API; also Survey Responded, Affiliate Conversion Approved "
        "and Unsubscribed when switched on."
    )
    settings = (
        Setting("write_key", str, "", "The Write Key of the HTTP API source in Segment.", secret=True),
        EndpointSetting(
            "endpoint",
            str,
            SEGMENT_US,
            f"Tracking API base URL: {SEGMENT_US} (US), {SEGMENT_EU} (EU), or any Segment-compatible host.",
        ),
        Setting("grow_enabled", bool, False, "Send captured contacts as identify calls (Grow)."),
        Setting("reclaim_enabled", bool, False, "Send abandonment events as track calls (Reclaim)."),
        Setting("group_id", str, "", "When set, each Grow contact also gets a group call with this Group ID."),
        Setting(
            "send_delay_minutes",
            int,
            15,
            "Minutes to wait after capture before a contact or an event is sent; a contact that "
            "identifies itself elsewhere meanwhile is not sent.",
        ),
        OriginsSetting(
            "allowed_origins",
            str,
            "",
            "Comma-separated origins whose pages may use the capture script, e.g. https://shop.example.",
        ),
        Setting(
            "capture_rate_limit",
            int,
            DEFAULT_CAPTURE_RATE_LIMIT,
            "Capture requests a minute per IP address (and per visitor); 0 turns the limit off.",
        ),
        _list("Only contacts whose email domain is one of these (gmail.com, or gmail).", "filter_email_domains"),
        _list(
            "Only contacts whose landing page URL contains one of these (a full URL or a portion).",
            "filter_landing_url",
        ),
        _list(
            "Only contacts whose landing page domain is one of these (subdomains included).", "filter_landing_domains"
        ),
        _list("Only contacts whose address state is one of these (address data).", "filter_states"),
        _list("Only contacts whose referrer URL contains one of these.", "filter_referrers"),
        Setting("send_survey_responses", bool, False, "Send 'Survey Responded' tracks when a survey is answered."),
        Setting("send_conversions", bool, False, "Send 'Affiliate Conversion Approved' tracks."),
        Setting("send_unsubscribes", bool, False, "Send 'Unsubscribed' tracks when a contact unsubscribes."),
    )
