"""The outbound history in the staff API, and the test send.

GET  /api/v1/integrations/ID/sync-runs/                 newest first
GET  /api/v1/integrations/ID/sync-items/?status=failed   (&source=, &run=)
POST /api/v1/integrations/ID/send-test/                  the collector's status code
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations.models import Integration
from integrations.outbound.models import OutboxItem, OutboxSource, OutboxStatus, SyncRun
from integrations.outbound.services import send_test


class SyncRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = SyncRun
        fields = ["id", "started_at", "finished_at", "sent", "failed", "skipped", "queued"]


class SyncItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = OutboxItem
        fields = ["id", "type", "event", "email", "message_id", "status", "error", "attempts", "sent_at"]


def outbound_integration(pk) -> Integration:
    integration = get_object_or_404(Integration, pk=pk)
    if integration.kind != "segment_source":
        raise NotFound(f"integration {pk} is {integration.kind}, not an outbound segment_source integration")
    return integration


class SyncRunList(ListAPIView):
    serializer_class = SyncRunSerializer

    def get_queryset(self):
        integration = outbound_integration(self.kwargs["integration_id"])
        return SyncRun.objects.filter(integration=integration).order_by("-started_at", "-id")


class SyncItemList(ListAPIView):
    serializer_class = SyncItemSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=OutboxStatus.values),
            OpenApiParameter("source", str, enum=OutboxSource.values),
            OpenApiParameter("run", int),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        integration = outbound_integration(self.kwargs["integration_id"])
        items = OutboxItem.objects.filter(integration=integration)
        params = self.request.query_params
        errors = {}
        status = params.get("status")
        if status is not None:
            if status not in OutboxStatus.values:
                errors["status"] = [f"must be one of {', '.join(OutboxStatus.values)}"]
            else:
                items = items.filter(status=status)
        source = params.get("source")
        if source is not None:
            if source not in OutboxSource.values:
                errors["source"] = [f"must be one of {', '.join(OutboxSource.values)}"]
            else:
                items = items.filter(source=source)
        run = params.get("run")
        if run is not None:
            if not run.isdigit() or len(run) > 18:
                errors["run"] = ["must be a sync run id (a whole number)"]
            else:
                items = items.filter(run_id=int(run))
        if errors:
            raise ValidationError(errors)
        return items.order_by("-id")


class SendTest(APIView):
    @extend_schema(
        request=None,
        responses=inline_serializer(
            "SendTestResult",
            {
                "status_code": serializers.IntegerField(allow_null=True),
                "ok": serializers.BooleanField(),
                "message_id": serializers.CharField(),
                "response": serializers.CharField(),
            },
        ),
    )
    def post(self, request, integration_id: int):
        integration = outbound_integration(integration_id)
        result = send_test(integration=integration)
        return Response(
            {
                "status_code": result.status_code,
                "ok": result.ok,
                "message_id": result.message_id,
                "response": result.response[:2000],
            }
        )
