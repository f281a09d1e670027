from django.urls import path

from integrations.inbound.views import endpoint

SINGLE = ("identify", "track", "page", "screen", "group", "alias")

urlpatterns = [
    *[path(f"v1/{t}", endpoint("single", t, f"Segment {t} call"), name=f"segment-{t}") for t in SINGLE],
    path("v1/batch", endpoint("batch", None, "Segment batch of messages"), name="segment-batch"),
    path("v1/import", endpoint("batch", None, "Segment import (same as batch)"), name="segment-import"),
    path(
        "v1/destination",
        endpoint("destination", None, "One message of any type (partner destination), or an array"),
        name="segment-destination",
    ),
]
