"""The loops API's shape (CONTRACT.md "Email and loops"): exactly these fields, stats read-only."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from campaigns.audience import AudienceField
from campaigns.email.models import EmailTemplate
from campaigns.loops import validation
from campaigns.loops.models import Loop, Reentry
from contacts.models import MailingList


class StepSerializer(serializers.Serializer):
    delay_minutes = serializers.IntegerField(
        min_value=0,
        max_value=validation.MAX_DELAY_MINUTES,
        help_text="After the previous step; the first step's after the trigger event's timestamp.",
    )
    template = serializers.PrimaryKeyRelatedField(queryset=EmailTemplate.objects.all())

    def validate(self, attrs: dict) -> dict:
        # A PATCH validates partially, nested steps included: a step still needs both fields.
        missing = {name: "This field is required." for name in ("delay_minutes", "template") if name not in attrs}
        if missing:
            raise serializers.ValidationError(missing)
        return attrs


class ListIdField(serializers.SlugRelatedField):
    """A mailing list by its list_id. PostgreSQL cannot compare text holding NUL: refuse it here."""

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:
            raise serializers.ValidationError("A list id cannot contain NUL (\\u0000).")
        return super().to_internal_value(data)


class StatsSerializer(serializers.Serializer):
    started = serializers.IntegerField()
    emailed = serializers.IntegerField()
    exited = serializers.IntegerField()
    unsubscribed = serializers.IntegerField()


class EventNamesField(serializers.ListField):
    child = serializers.CharField(max_length=255, trim_whitespace=True)

    def to_internal_value(self, data):
        try:
            return validation.event_names(data)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None


class LoopSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=200)
    enabled = serializers.BooleanField(required=False, default=False)
    trigger_events = EventNamesField(required=False, default=list)
    exit_events = EventNamesField(required=False, default=list)
    reentry = serializers.ChoiceField(choices=Reentry.values, required=False, default=Reentry.ONCE)
    reentry_days = serializers.IntegerField(min_value=1, max_value=3650, required=False, allow_null=True, default=None)
    mailing_list = ListIdField(
        slug_field="list_id", queryset=MailingList.objects.all(), required=False, allow_null=True, default=None
    )
    audience = AudienceField(default=dict)
    steps = StepSerializer(many=True, required=False, default=list)
    stats = serializers.SerializerMethodField()

    def validate_name(self, value: str) -> str:
        value = value.strip()
        taken = Loop.objects.filter(name=value)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError("a loop with this name exists")
        return value

    def validate(self, attrs: dict) -> dict:
        current = self.instance

        def value(name, default=None):
            if name in attrs:
                return attrs[name]
            if current is not None:
                return current.steps.count() if name == "steps" else getattr(current, name)
            return default

        steps = attrs["steps"] if "steps" in attrs else value("steps", [])
        if value("reentry", Reentry.ONCE) != Reentry.AFTER_DAYS and "reentry" in attrs:
            attrs["reentry_days"] = None
        errors = validation.loop_consistency(
            enabled=value("enabled", False),
            trigger_events=value("trigger_events", []),
            exit_events=value("exit_events", []),
            reentry=value("reentry", Reentry.ONCE),
            reentry_days=value("reentry_days"),
            steps=len(steps) if isinstance(steps, list) else steps,
        )
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    @extend_schema_field(StatsSerializer)
    def get_stats(self, loop: Loop) -> dict:
        totals = self.context.get("stats") or {}
        if loop.pk in totals:
            return totals[loop.pk]
        from campaigns.loops.stats import loop_totals

        return loop_totals([loop.pk])[loop.pk]
