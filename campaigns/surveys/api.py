"""/api/v1/campaigns/, /api/v1/survey-dispatches/ and /api/v1/survey-responses/: thin views over
campaigns.surveys.services; metrics from the raw counts; responses as CSV with ?format=csv."""

from __future__ import annotations

from datetime import date

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from campaigns.surveys.export import responses_csv_response
from campaigns.surveys.models import Campaign, DispatchStatus, Reason, SurveyDispatch, SurveyResponse
from campaigns.surveys.serializers import (
    CampaignSerializer,
    DispatchSerializer,
    MetricsSerializer,
    ResponseSerializer,
)
from campaigns.surveys.services import CampaignProblem, campaign_activate, campaign_pause, campaign_save
from campaigns.surveys.stats import figures
from common.ids import parse_pk


def _id_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    value = parse_pk(raw)
    if value is None:
        raise ValidationError({name: f"{name} must be an id (a whole number), not {raw!r}"})
    return value


def _date_param(request: Request, name: str) -> date | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise ValidationError({name: f"{name} must be a date (YYYY-MM-DD), not {raw!r}"}) from None


def _problem(problem: CampaignProblem) -> Response:
    return Response(
        {"code": problem.code, "message": problem.message, "field": problem.field},
        status=status.HTTP_400_BAD_REQUEST,
    )


@extend_schema_view(
    list=extend_schema(summary="List survey campaigns"),
    retrieve=extend_schema(summary="One survey campaign"),
    create=extend_schema(
        summary="Create a survey campaign (as a draft)",
        description="reminders are [{delay_minutes, template}], at most 5, each counted from the survey email's "
        "sending. status is read-only: use activate/ and pause/.",
    ),
    partial_update=extend_schema(summary="Change a survey campaign; reminders, when sent, replace its reminders"),
)
class CampaignViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = CampaignSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[Campaign]:
        return Campaign.objects.order_by("pk").select_related("contact_list").prefetch_related("reminders")

    def _fresh(self, campaign: Campaign) -> dict:
        return self.get_serializer(self.get_queryset().get(pk=campaign.pk)).data

    def _save(self, campaign: Campaign | None, data: dict) -> Campaign:
        fields = {k: v for k, v in data.items() if k not in ("delay_minutes", "reminders")}
        return campaign_save(
            campaign=campaign,
            delay_minutes=data.get("delay_minutes"),
            reminders=data.get("reminders") if "reminders" in data else None,
            **fields,
        )

    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            campaign = self._save(None, serializer.validated_data)
        except CampaignProblem as problem:
            return _problem(problem)
        return Response(self._fresh(campaign), status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args, **kwargs) -> Response:
        campaign = self.get_object()
        serializer = self.get_serializer(campaign, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        try:
            campaign = self._save(campaign, serializer.validated_data)
        except CampaignProblem as problem:
            return _problem(problem)
        return Response(self._fresh(campaign))

    def update(self, request: Request, *args, **kwargs) -> Response:
        return self.partial_update(request, *args, **kwargs)

    @extend_schema(
        request=None,
        summary="Activate: draft or paused → ready",
        description="400 with code no_logo when the template has no logo (no_scale: no score links; "
        "no_trigger_events: nothing would trigger it), naming what is missing.",
    )
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk=None) -> Response:
        try:
            campaign = campaign_activate(campaign=self.get_object())
        except CampaignProblem as problem:
            return _problem(problem)
        return Response(self._fresh(campaign))

    @extend_schema(request=None, summary="Pause: no new surveys; those due while paused are skipped")
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk=None) -> Response:
        try:
            campaign = campaign_pause(campaign=self.get_object())
        except CampaignProblem as problem:
            return _problem(problem)
        return Response(self._fresh(campaign))

    @extend_schema(
        responses=MetricsSerializer,
        summary="The campaign's figures",
        parameters=[
            OpenApiParameter("since", str, description="First UTC day (YYYY-MM-DD); default: the beginning."),
            OpenApiParameter("until", str, description="Last UTC day (YYYY-MM-DD); default: today."),
        ],
    )
    @action(detail=True, methods=["get"])
    def metrics(self, request: Request, pk=None) -> Response:
        campaign = self.get_object()
        return Response(
            figures(campaign, since=_date_param(request, "since"), until=_date_param(request, "until")).as_api()
        )


@extend_schema_view(
    list=extend_schema(
        summary="Survey dispatches: one per matching trigger, with the reason of each skip",
        parameters=[
            OpenApiParameter("campaign", int),
            OpenApiParameter("contact", int),
            OpenApiParameter("status", str, enum=DispatchStatus.values),
            OpenApiParameter("reason", str, enum=Reason.values),
        ],
    ),
    retrieve=extend_schema(summary="One survey dispatch"),
)
class DispatchViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = DispatchSerializer

    def get_queryset(self) -> QuerySet[SurveyDispatch]:
        rows = SurveyDispatch.objects.order_by("-id")
        if self.action != "list":
            return rows
        request = self.request
        for name in ("campaign", "contact"):
            value = _id_param(request, name)
            if value is not None:
                rows = rows.filter(**{f"{name}_id": value})
        for name, choices in (("status", DispatchStatus.values), ("reason", Reason.values)):
            value = request.query_params.get(name)
            if value:
                if value not in choices:
                    raise ValidationError({name: f"{name} must be one of {', '.join(choices)}, not {value!r}"})
                rows = rows.filter(**{name: value})
        return rows


class CSVRenderer(BaseRenderer):
    """Lets ?format=csv through content negotiation; the list answers it with a streamed CSV."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return b""


@extend_schema_view(
    list=extend_schema(
        summary="Survey responses, newest first (CSV with ?format=csv)",
        parameters=[
            OpenApiParameter("campaign", int),
            OpenApiParameter("contact", int),
            OpenApiParameter("format", str, enum=["json", "csv"]),
        ],
    ),
    retrieve=extend_schema(summary="One survey response"),
)
class ResponseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ResponseSerializer
    renderer_classes = (JSONRenderer, BrowsableAPIRenderer, CSVRenderer)

    def get_queryset(self) -> QuerySet[SurveyResponse]:
        rows = SurveyResponse.objects.order_by("-created_at", "-id")
        if self.action != "list":
            return rows
        for name in ("campaign", "contact"):
            value = _id_param(self.request, name)
            if value is not None:
                rows = rows.filter(**{f"{name}_id": value})
        return rows

    def list(self, request: Request, *args, **kwargs):
        if request.query_params.get("format") == "csv":
            return responses_csv_response(self.get_queryset(), filename="survey-responses.csv")
        return super().list(request, *args, **kwargs)
