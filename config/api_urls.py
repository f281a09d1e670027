"""The staff REST API under /api/v1/. Each app registers its own viewsets here."""

from django.urls import path
from rest_framework.routers import DefaultRouter

from affiliates.api import AffiliateViewSet, ConversionViewSet, OfferViewSet
from campaigns.email.api import EmailSendViewSet, EmailTemplateViewSet
from campaigns.loops.api import LoopViewSet
from campaigns.surveys.api import CampaignViewSet, DispatchViewSet, ResponseViewSet
from campaigns.webhooks.api import WebhookViewSet
from contacts.api import ContactViewSet, MailingListViewSet, PropertyDefinitionViewSet, SuppressionViewSet
from integrations.outbound.api import SendTest, SyncItemList, SyncRunList

router = DefaultRouter(trailing_slash=True)
router.register("contacts", ContactViewSet, basename="contact")
router.register("contact-properties", PropertyDefinitionViewSet, basename="contact-property")
router.register("mailing-lists", MailingListViewSet, basename="mailing-list")
router.register("email-templates", EmailTemplateViewSet, basename="email-template")
router.register("email-sends", EmailSendViewSet, basename="email-send")
router.register("loops", LoopViewSet, basename="loop")
# Survey campaigns (activate/, pause/, metrics/), their dispatches and responses (?format=csv), webhooks.
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("survey-dispatches", DispatchViewSet, basename="survey-dispatch")
router.register("survey-responses", ResponseViewSet, basename="survey-response")
router.register("webhooks", WebhookViewSet, basename="webhook")
# GET (list, filtered) and POST (bulk upload) on suppressions/, GET and DELETE (lift) on suppressions/ID/.
router.register("suppressions", SuppressionViewSet, basename="suppression")
router.register("affiliates", AffiliateViewSet, basename="affiliate")
router.register("offers", OfferViewSet, basename="offer")
# GET only, plus POST conversions/ID/approve/ and /deny/.
router.register("conversions", ConversionViewSet, basename="conversion")

urlpatterns = [
    *router.urls,
    # The outbound Segment source's history and test send (integrations/outbound/api.py).
    path("integrations/<int:integration_id>/sync-runs/", SyncRunList.as_view(), name="sync-runs"),
    path("integrations/<int:integration_id>/sync-items/", SyncItemList.as_view(), name="sync-items"),
    path("integrations/<int:integration_id>/send-test/", SendTest.as_view(), name="send-test"),
]
