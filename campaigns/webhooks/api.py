"""/api/v1/webhooks/: subscriptions {"id", "url", "secret", "events"} (CONTRACT.md)."""

from __future__ import annotations

import base64
import binascii

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from campaigns.webhooks.models import WebhookEvent, WebhookSubscription, new_secret
from campaigns.webhooks.netguard import UnsafeURL, check_url
from campaigns.webhooks.services import subscription_save


def secret_problem(value: str) -> str:
    """Why a secret is not a Standard Webhooks secret (`whsec_` and base64 of 24 to 64 bytes)."""
    if not value.startswith("whsec_"):
        return "the secret starts with whsec_ (leave it out to have one made)"
    try:
        raw = base64.b64decode(value[6:], validate=True)
    except (binascii.Error, ValueError):
        return "after whsec_ the secret is base64"
    if not 24 <= len(raw) <= 64:
        return "the secret holds 24 to 64 bytes (base64 after whsec_)"
    return ""


def url_problem(value: str) -> str:
    try:
        check_url(value)
    except UnsafeURL as error:
        return str(error)
    return ""


class WebhookSerializer(serializers.ModelSerializer):
    url = serializers.URLField(max_length=1000)
    secret = serializers.CharField(max_length=200, required=False, help_text="whsec_ and base64; made when left out.")
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.values), allow_empty=False, max_length=len(WebhookEvent)
    )

    class Meta:
        model = WebhookSubscription
        fields = ("id", "url", "secret", "events")

    def validate_url(self, value: str) -> str:
        problem = url_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def validate_secret(self, value: str) -> str:
        problem = secret_problem(value.strip())
        if problem:
            raise serializers.ValidationError(problem)
        return value.strip()

    def validate_events(self, value: list) -> list:
        return list(dict.fromkeys(value))


@extend_schema_view(
    list=extend_schema(summary="List webhook subscriptions"),
    retrieve=extend_schema(summary="One webhook subscription"),
    create=extend_schema(
        summary="Subscribe a URL to survey events",
        description="Events: response.created, response.updated, survey.bounced, contact.unsubscribed. Calls are "
        "signed as Standard Webhooks sign them (webhook-id, webhook-timestamp, webhook-signature). A secret "
        "(whsec_…) is made when none is given.",
    ),
    partial_update=extend_schema(summary="Change a webhook subscription (a changed URL is enabled again)"),
    destroy=extend_schema(summary="Delete a webhook subscription (its delivery log stays)"),
)
class WebhookViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = WebhookSerializer
    queryset = WebhookSubscription.objects.order_by("pk")
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data.setdefault("secret", new_secret())
        subscription = subscription_save(**data)
        return Response(self.get_serializer(subscription).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args, **kwargs) -> Response:
        subscription = self.get_object()
        serializer = self.get_serializer(subscription, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if "url" in data and data["url"] != subscription.url:
            data["enabled"] = True  # a new address gets a new chance after a 410
        subscription = subscription_save(subscription=subscription, **data)
        return Response(self.get_serializer(subscription).data)

    def update(self, request: Request, *args, **kwargs) -> Response:
        return self.partial_update(request, *args, **kwargs)
