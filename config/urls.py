from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config import admin as _themed_admin  # noqa: F401 - third-party admin pages in the theme
from integrations.health import healthz

admin.site.site_header = "Switchyard"
admin.site.site_title = "Switchyard admin"
admin.site.index_title = "Segment partner operations"

urlpatterns = [
    # Nothing public lives at the root: people who open the bare address are staff.
    path("", RedirectView.as_view(pattern_name="admin:index"), name="home"),
    path("", include("integrations.inbound.urls")),
    # The capture script (/capture.js) and its endpoint (/capture/events), public, keyed by site key.
    path("", include("integrations.capture.urls")),
    path("api/v1/", include("config.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("healthz", healthz, name="healthz"),
    # Email: unsubscribe links (public, no login) and the ESPs' tracking webhooks (bounces, complaints).
    path("email/", include("campaigns.email.urls")),
    path("anymail/", include("anymail.urls")),
    # Survey pages (/s/<token>/?score=N): public, the signed token is the key; a GET records no answer.
    path("s/", include("campaigns.surveys.urls")),
    # Affiliates' referral links (/r/CODE): public, record a click and redirect to the offer's landing page.
    path("", include("affiliates.urls")),
    path("admin/", admin.site.urls),
]
