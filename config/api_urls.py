"""The staff REST API under /api/v1/. Each app registers its own viewsets here."""

from rest_framework.routers import DefaultRouter

router = DefaultRouter(trailing_slash=True)

urlpatterns = router.urls
