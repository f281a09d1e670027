"""/api/v1/loops/: thin views over campaigns.loops.services; stats from the per-day counters."""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from campaigns.loops.models import Loop, Reentry
from campaigns.loops.serializers import LoopSerializer
from campaigns.loops.services import loop_delete, loop_steps_set
from campaigns.loops.stats import loop_totals
from common import clock

FIELDS = (
    "name",
    "enabled",
    "trigger_events",
    "exit_events",
    "reentry",
    "reentry_days",
    "mailing_list",
    "audience",
)


@extend_schema_view(
    list=extend_schema(summary="List loops"),
    retrieve=extend_schema(summary="One loop"),
    create=extend_schema(
        summary="Create a loop",
        description="Steps are [{delay_minutes, template}]: each delay counts from the previous step, the "
        "first from the trigger event's timestamp. stats is read-only.",
    ),
    partial_update=extend_schema(summary="Change a loop; steps, when sent, replace the loop's steps"),
    destroy=extend_schema(summary="Delete a loop; its waiting emails are skipped"),
)
class LoopViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = LoopSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Loop]:
        return Loop.objects.order_by("pk").select_related("mailing_list").prefetch_related("steps")

    def get_serializer(self, *args, **kwargs):
        # The page's figures in one query, whatever the number of loops on it.
        if args and "data" not in kwargs:
            rows = args[0] if isinstance(args[0], list | QuerySet) else [args[0]]
            kwargs.setdefault("context", self.get_serializer_context())
            kwargs["context"]["stats"] = loop_totals(loop.pk for loop in rows)
        return super().get_serializer(*args, **kwargs)

    def _fresh(self, loop: Loop) -> dict:
        return self.get_serializer(self.get_queryset().get(pk=loop.pk)).data

    @transaction.atomic
    def _save(self, loop: Loop, data: dict) -> Loop:
        for name in FIELDS:
            if name in data:
                setattr(loop, name, data[name])
        if loop.reentry != Reentry.AFTER_DAYS:
            loop.reentry_days = None
        loop.updated_at = clock.now()
        loop.save()
        if "steps" in data:
            loop_steps_set(loop=loop, steps=data["steps"])
        return loop

    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        loop = self._save(Loop(created_at=clock.now()), serializer.validated_data)
        return Response(self._fresh(loop), status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args, **kwargs) -> Response:
        loop = self.get_object()
        serializer = self.get_serializer(loop, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        loop = self._save(loop, serializer.validated_data)
        return Response(self._fresh(loop))

    def update(self, request: Request, *args, **kwargs) -> Response:
        return self.partial_update(request, *args, **kwargs)

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        loop_delete(loop=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
