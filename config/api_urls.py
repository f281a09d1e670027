"""The staff REST API under /api/v1/. Each app registers its own viewsets here."""

from django.urls import path
from rest_framework.routers import DefaultRouter

from contacts.api import ContactViewSet, MailingListViewSet, PropertyDefinitionViewSet, SuppressionUploadView

router = DefaultRouter(trailing_slash=True)
router.register("contacts", ContactViewSet, basename="contact")
router.register("contact-properties", PropertyDefinitionViewSet, basename="contact-property")
router.register("mailing-lists", MailingListViewSet, basename="mailing-list")

urlpatterns = [
    path("suppressions/", SuppressionUploadView.as_view(), name="suppressions"),
    *router.urls,
]
