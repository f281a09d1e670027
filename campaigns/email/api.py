"""/api/v1/email-templates/ and /api/v1/email-sends/: thin views over the email services."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError, QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from campaigns.email.models import EmailSend, EmailTemplate, Purpose, SendStatus
from campaigns.email.rendering import TemplateError
from campaigns.email.serializers import (
    EmailPreviewRequestSerializer,
    EmailPreviewSerializer,
    EmailSendSerializer,
    EmailTemplateSerializer,
)
from campaigns.email.services import TEMPLATE_FIELDS, email_preview, email_template_save
from common.ids import parse_pk
from contacts.models import Contact


@extend_schema_view(
    list=extend_schema(summary="List email templates"),
    retrieve=extend_schema(summary="One email template"),
    create=extend_schema(
        summary="Create an email template",
        description="subject, html and text are Django template text with contact and event in the context "
        "({{ contact.first_name }}, {{ contact.properties.plan }}, {{ event.properties.order_id }}). An empty "
        "text is made from the HTML. A part that does not compile is a 400 naming the part and the line.",
    ),
    partial_update=extend_schema(summary="Change an email template"),
    destroy=extend_schema(summary="Delete an email template (409 while sends or loops use it)"),
)
class EmailTemplateViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = EmailTemplateSerializer
    queryset = EmailTemplate.objects.order_by("pk")
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def _save(self, serializer: EmailTemplateSerializer) -> EmailTemplate:
        fields = {
            name: serializer.validated_data[name] for name in TEMPLATE_FIELDS if name in serializer.validated_data
        }
        try:
            return email_template_save(template=serializer.instance, **fields)
        except DjangoValidationError as error:
            raise ValidationError(error.message_dict) from error

    def perform_create(self, serializer: EmailTemplateSerializer) -> None:
        serializer.instance = self._save(serializer)

    def perform_update(self, serializer: EmailTemplateSerializer) -> None:
        serializer.instance = self._save(serializer)

    def update(self, request: Request, *args, **kwargs) -> Response:
        kwargs["partial"] = True
        return super().update(request, *args, **kwargs)

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        template = self.get_object()
        try:
            template.delete()
        except ProtectedError as error:
            users = sorted({str(type(obj)._meta.verbose_name_plural) for obj in error.protected_objects})
            return Response(
                {"detail": f"This template is in use ({', '.join(users)}); it cannot be deleted.", "code": "in_use"},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Render the template for a contact",
        request=EmailPreviewRequestSerializer,
        responses={200: EmailPreviewSerializer},
    )
    @action(detail=True, methods=["post"], serializer_class=EmailPreviewRequestSerializer)
    def preview(self, request: Request, pk=None) -> Response:
        template = self.get_object()
        serializer = EmailPreviewRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        contact = Contact.objects.filter(pk=serializer.validated_data["contact"]).first()
        if contact is None:
            raise ValidationError({"contact": ["No contact with this id."]})
        try:
            rendered = email_preview(template=template, contact=contact)
        except TemplateError as error:
            raise ValidationError({error.part: [str(error)]}) from error
        return Response(rendered)


def _choice(request: Request, name: str, choices: list[str]) -> str | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    if value not in choices:
        raise ValidationError({name: [f"Must be one of {', '.join(choices)}."]})
    return value


@extend_schema_view(
    list=extend_schema(
        summary="The send log, newest first",
        parameters=[
            OpenApiParameter("contact", int, description="A contact id."),
            OpenApiParameter("status", str, enum=SendStatus.values),
            OpenApiParameter("purpose", str, enum=Purpose.values),
            OpenApiParameter("template", int, description="A template id."),
        ],
    ),
    retrieve=extend_schema(summary="One send"),
)
class EmailSendViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = EmailSendSerializer

    def get_queryset(self) -> QuerySet[EmailSend]:
        queryset = EmailSend.objects.order_by("-pk")
        params = self.request.query_params
        for name in ("contact", "template"):
            if params.get(name):
                pk = parse_pk(params[name])
                if pk is None:
                    raise ValidationError({name: ["Must be an id (a whole number)."]})
                queryset = queryset.filter(**{f"{name}_id": pk})
        status_ = _choice(self.request, "status", SendStatus.values)
        if status_:
            queryset = queryset.filter(status=status_)
        purpose = _choice(self.request, "purpose", Purpose.values)
        if purpose:
            queryset = queryset.filter(purpose=purpose)
        return queryset
