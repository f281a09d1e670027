from django.urls import path

from integrations.inbound.views import endpoint

SINGLE = ("identify", "track", "page", "screen", "group", "alias")


def routes(route: str, name: str, mode: str, path_type: str | None, summary: str, short: str | None = None) -> list:
    """The documented path, plus what clients also send: a trailing slash, and analytics.js's
    one-letter paths (it posts a track to /v1/t, a batch to /v1/b). Aliases stay out of the schema."""
    routes = [path(route, endpoint(mode, path_type, summary), name=name)]
    aliases = [f"{route}/"] + ([short, f"{short}/"] if short else [])
    alias_view = endpoint(mode, path_type, summary, in_schema=False)
    return routes + [path(alias, alias_view) for alias in aliases]


urlpatterns = [
    *[
        route
        for t in SINGLE
        for route in routes(f"v1/{t}", f"segment-{t}", "single", t, f"Segment {t} call", short=f"v1/{t[0]}")
    ],
    *routes("v1/batch", "segment-batch", "batch", None, "Segment batch of messages", short="v1/b"),
    *routes("v1/import", "segment-import", "batch", None, "Segment import (same as batch)"),
    *routes(
        "v1/destination",
        "segment-destination",
        "destination",
        None,
        "One message of any type (partner destination), or an array",
    ),
]
