"""The capture side's start-up: CORS for its endpoint (called from the outbound setup)."""

from __future__ import annotations


def ready() -> None:
    from corsheaders.signals import check_request_enabled

    from integrations.capture.views import cors_enabled

    check_request_enabled.connect(cors_enabled, dispatch_uid="capture-cors")
