"""Thin REST views: validate with a serializer, call a service, answer with the result."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from contacts.models import AudienceMembership, Contact, ListMembership, MailingList, PropertyDefinition, Suppression
from contacts.selectors import contact_events
from contacts.serializers import (
    ContactEventSerializer,
    ContactSerializer,
    MailingListSerializer,
    PropertyDefinitionSerializer,
    SuppressionFilterSerializer,
    SuppressionResultSerializer,
    SuppressionSerializer,
    SuppressionUploadSerializer,
)
from contacts.services import (
    contact_create,
    contact_erase,
    contact_update,
    email_md5,
    suppressions_add,
    suppressions_lift,
)


def actor(request: Request) -> str:
    return f"api:{request.user.get_username()}"[:100]


@extend_schema_view(
    list=extend_schema(
        summary="List contacts",
        parameters=[
            OpenApiParameter("email", str, description="Exact email, case-insensitive."),
            OpenApiParameter("user_id", str, description="Exact userId."),
        ],
    ),
    retrieve=extend_schema(summary="One contact"),
    create=extend_schema(summary="Create a contact (needs an email or a user_id)"),
    partial_update=extend_schema(summary="Change a contact; only the fields sent change"),
    destroy=extend_schema(
        summary="Erase a contact (GDPR)",
        description="Deletes the contact, its events and memberships, redacts its inbox messages, and "
        "suppresses its email and userId so later messages cannot re-create it.",
    ),
)
class ContactViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ContactSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Contact]:
        queryset = Contact.objects.order_by("pk").prefetch_related(
            Prefetch(
                "memberships",
                queryset=ListMembership.objects.filter(subscribed=True).select_related("mailing_list"),
                to_attr="subscribed_lists",
            ),
            Prefetch("audiences", queryset=AudienceMembership.objects.filter(member=True), to_attr="current_audiences"),
        )
        params = self.request.query_params
        if params.get("email"):
            queryset = queryset.filter(email=params["email"].strip().lower())
        if params.get("user_id"):
            queryset = queryset.filter(user_id=params["user_id"].strip())
        return queryset

    def _fresh(self, contact: Contact) -> Contact:
        return self.get_queryset().get(pk=contact.pk)

    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        contact = contact_create(**serializer.validated_data, actor=actor(request))
        return Response(self.get_serializer(self._fresh(contact)).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args, **kwargs) -> Response:
        contact = self.get_object()
        serializer = self.get_serializer(contact, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        contact = contact_update(contact=contact, **serializer.validated_data, actor=actor(request))
        return Response(self.get_serializer(self._fresh(contact)).data)

    def update(self, request: Request, *args, **kwargs) -> Response:
        return self.partial_update(request, *args, **kwargs)

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        contact_erase(contact=self.get_object(), requested_by=actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="The contact's timeline, newest first", responses=ContactEventSerializer(many=True))
    @action(detail=True, methods=["get"], serializer_class=ContactEventSerializer)
    def events(self, request: Request, pk=None) -> Response:
        contact = self.get_object()
        page = self.paginate_queryset(contact_events(contact=contact))
        return self.get_paginated_response(ContactEventSerializer(page, many=True).data)


@extend_schema_view(
    list=extend_schema(summary="List mailing lists"),
    create=extend_schema(summary="Create a mailing list (list_id is what senders use in mailingLists)"),
)
class MailingListViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    serializer_class = MailingListSerializer
    queryset = MailingList.objects.order_by("name", "pk")


@extend_schema_view(
    list=extend_schema(summary="List property definitions"),
    create=extend_schema(summary="Define a property (snake_case name and a type)"),
)
class PropertyDefinitionViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    serializer_class = PropertyDefinitionSerializer
    queryset = PropertyDefinition.objects.order_by("name")

    def perform_create(self, serializer: PropertyDefinitionSerializer) -> None:
        serializer.save(source="api")


@extend_schema_view(
    list=extend_schema(summary="List suppressions, newest first", parameters=[SuppressionFilterSerializer]),
    retrieve=extend_schema(summary="One suppression"),
    destroy=extend_schema(
        summary="Lift a suppression",
        description="Deletes the row: the person may be created, emailed and sent out again (an erased "
        "person comes back only when a new message or staff create them).",
    ),
)
class SuppressionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    serializer_class = SuppressionSerializer
    http_method_names = ["get", "post", "delete", "head", "options"]
    lookup_value_regex = "[0-9]{1,18}"

    def get_queryset(self) -> QuerySet[Suppression]:
        # suppression_created serves the order; each filter is an indexed column.
        queryset = Suppression.objects.order_by("-created_at", "-id")
        if self.action != "list":
            return queryset
        filters = SuppressionFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        given = filters.validated_data
        if "reason" in given:
            queryset = queryset.filter(reason=given["reason"])
        if "email" in given:
            queryset = queryset.filter(email_md5=email_md5(given["email"]))
        if "md5" in given:
            queryset = queryset.filter(email_md5=given["md5"].lower())
        if "user_id" in given:
            queryset = queryset.filter(user_id=given["user_id"])
        if "created_after" in given:
            queryset = queryset.filter(created_at__gte=given["created_after"])
        if "created_before" in given:
            queryset = queryset.filter(created_at__lt=given["created_before"])
        return queryset

    @extend_schema(
        summary="Suppress emails or MD5s in bulk",
        description="Up to 50,000 entries a request. Idempotent: entries already suppressed are counted "
        "as existing and left as they are.",
        request=SuppressionUploadSerializer,
        responses={200: SuppressionResultSerializer},
    )
    def create(self, request: Request) -> Response:
        serializer = SuppressionUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        emails, md5s = data.get("emails", []), [m.lower() for m in data.get("md5", [])]
        received = len({email_md5(e) for e in emails} | set(md5s))
        created = suppressions_add(
            emails=emails,
            md5s=md5s,
            reason=data["reason"],
            note=data["note"] or actor(request),
            keep_plain=data["keep_plain"],
        )
        return Response({"received": received, "created": created, "existing": received - created})

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        suppressions_lift(ids=[self.get_object().pk])
        return Response(status=status.HTTP_204_NO_CONTENT)
