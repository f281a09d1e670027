from django.urls import path

from integrations.capture.views import capture_events, capture_script

urlpatterns = [
    path("capture.js", capture_script, name="capture-script"),
    path("capture/events", capture_events, name="capture-events"),
]
