"""The staff REST API under /api/v1/. Each app registers its own viewsets here."""

from rest_framework.routers import DefaultRouter

from campaigns.email.api import EmailSendViewSet, EmailTemplateViewSet
from campaigns.loops.api import LoopViewSet
from contacts.api import ContactViewSet, MailingListViewSet, PropertyDefinitionViewSet, SuppressionViewSet

router = DefaultRouter(trailing_slash=True)
router.register("contacts", ContactViewSet, basename="contact")
router.register("contact-properties", PropertyDefinitionViewSet, basename="contact-property")
router.register("mailing-lists", MailingListViewSet, basename="mailing-list")
router.register("email-templates", EmailTemplateViewSet, basename="email-template")
router.register("email-sends", EmailSendViewSet, basename="email-send")
router.register("loops", LoopViewSet, basename="loop")
# GET (list, filtered) and POST (bulk upload) on suppressions/, GET and DELETE (lift) on suppressions/ID/.
router.register("suppressions", SuppressionViewSet, basename="suppression")

urlpatterns = [*router.urls]
