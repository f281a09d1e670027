"""/api/v1/affiliates/, /api/v1/offers/ and /api/v1/conversions/ (CONTRACT.md "Affiliates"): thin
views over affiliates.services."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from affiliates.models import Affiliate, Conversion, Offer
from affiliates.serializers import (
    AffiliateFilterSerializer,
    AffiliateSerializer,
    ConversionFilterSerializer,
    ConversionSerializer,
    OfferSerializer,
)
from affiliates.services import (
    AffiliateError,
    affiliate_create,
    affiliate_update,
    affiliates_link_contacts,
    conversions_approve,
    conversions_deny,
)
from common import clock


def actor(request: Request) -> str:
    return f"api:{request.user.get_username()}"[:100]


def _filters(serializer_class, request: Request) -> dict:
    params = serializer_class(data={k: v for k, v in request.query_params.items() if k in serializer_class().fields})
    params.is_valid(raise_exception=True)
    return params.validated_data


@extend_schema_view(
    list=extend_schema(
        summary="List affiliates",
        parameters=[OpenApiParameter("email", str, description="Exact email, case-insensitive.")],
    ),
    retrieve=extend_schema(summary="One affiliate"),
    create=extend_schema(summary="Add an affiliate (a referral code is made when none is given)"),
    partial_update=extend_schema(summary="Change an affiliate; only the fields sent change"),
)
class AffiliateViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = AffiliateSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[Affiliate]:
        queryset = Affiliate.objects.order_by("pk")
        if self.action == "list":
            email = _filters(AffiliateFilterSerializer, self.request).get("email")
            if email:
                queryset = queryset.filter(email=email.strip().lower())
        return queryset

    def get_serializer(self, *args, **kwargs):
        # Affiliates on the page whose contact appeared since are linked first: one query.
        if args and "data" not in kwargs and isinstance(args[0], list | Affiliate):
            affiliates_link_contacts(args[0] if isinstance(args[0], list) else [args[0]])
        return super().get_serializer(*args, **kwargs)

    def _answer(self, call, code=status.HTTP_200_OK, **kwargs) -> Response:
        try:
            affiliate = call(actor=actor(self.request), **kwargs)
        except AffiliateError as error:
            raise serializers.ValidationError({error.field: [error.message]}) from None
        return Response(self.get_serializer(affiliate).data, status=code)

    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._answer(affiliate_create, status.HTTP_201_CREATED, **serializer.validated_data)

    def partial_update(self, request: Request, *args, **kwargs) -> Response:
        affiliate = self.get_object()
        serializer = self.get_serializer(affiliate, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        return self._answer(affiliate_update, affiliate=affiliate, **serializer.validated_data)

    def update(self, request: Request, *args, **kwargs) -> Response:
        return self.partial_update(request, *args, **kwargs)


@extend_schema_view(
    list=extend_schema(summary="List offers"),
    retrieve=extend_schema(summary="One offer"),
    create=extend_schema(
        summary="Create an offer",
        description="commission_type: percent (of the order), flat_order or flat_item; sku_rates replace the "
        "offer's rate for those products. landing_url is where referral links land; auto_approve_days approves "
        "pending conversions of active affiliates after that many days.",
    ),
    partial_update=extend_schema(summary="Change an offer"),
)
class OfferViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = OfferSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]
    queryset = Offer.objects.order_by("pk")

    def perform_create(self, serializer) -> None:
        now = clock.now()
        serializer.save(created_at=now, updated_at=now)

    def perform_update(self, serializer) -> None:
        serializer.save(updated_at=clock.now())


@extend_schema_view(
    list=extend_schema(
        summary="List conversions, newest first",
        parameters=[
            OpenApiParameter("affiliate", int, description="An affiliate's id."),
            OpenApiParameter("status", str, enum=["pending", "approved", "denied", "unqualified", "reversed"]),
        ],
    ),
    retrieve=extend_schema(summary="One conversion"),
)
class ConversionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ConversionSerializer

    def get_queryset(self) -> QuerySet[Conversion]:
        queryset = Conversion.objects.order_by("-created_at", "-id")
        if self.action == "list":
            params = _filters(ConversionFilterSerializer, self.request)
            if "affiliate" in params:
                queryset = queryset.filter(affiliate_id=params["affiliate"])
            if "status" in params:
                queryset = queryset.filter(status=params["status"])
        return queryset

    def _decide(self, call, verb: str) -> Response:
        conversion = self.get_object()
        result = call(ids=[conversion.pk], actor=actor(self.request))
        if not result.done:
            reason = next(iter(result.refused), f"could not be {verb}")
            return Response({"status": [reason]}, status=status.HTTP_400_BAD_REQUEST)
        conversion.refresh_from_db()
        return Response(self.get_serializer(conversion).data)

    @extend_schema(summary="Approve a pending conversion", request=None, responses=ConversionSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk=None) -> Response:
        return self._decide(conversions_approve, "approved")

    @extend_schema(
        summary="Deny a pending conversion (approved ones cannot be denied; a refund reverses them)",
        request=None,
        responses=ConversionSerializer,
    )
    @action(detail=True, methods=["post"])
    def deny(self, request: Request, pk=None) -> Response:
        return self._decide(conversions_deny, "denied")
