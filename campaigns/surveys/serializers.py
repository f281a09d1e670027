"""The survey API's shapes (CONTRACT.md "Survey campaigns"): exactly these fields."""

from __future__ import annotations

from django.apps import apps
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from campaigns.audience import AudienceField
from campaigns.email.models import EmailTemplate
from campaigns.loops import validation
from campaigns.surveys.models import Campaign, Metric, SurveyDispatch, SurveyResponse
from campaigns.surveys.services import MAX_REMINDERS, template_problem
from contacts.models import MailingList

MAX_DELAY_MINUTES = validation.MAX_DELAY_MINUTES
MAX_DAYS = 3650


class ReminderSerializer(serializers.Serializer):
    delay_minutes = serializers.IntegerField(
        min_value=1, max_value=MAX_DELAY_MINUTES, help_text="After the survey email was sent."
    )
    template = serializers.PrimaryKeyRelatedField(queryset=EmailTemplate.objects.all())


class EventNamesField(serializers.ListField):
    child = serializers.CharField(max_length=255, trim_whitespace=True)

    def to_internal_value(self, data):
        try:
            return validation.event_names(data)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None


class ListIdField(serializers.SlugRelatedField):
    """A mailing list by its list_id; text the database cannot hold (a NUL) names no list."""

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:
            self.fail("does_not_exist", slug_name=self.slug_field, value="(a value with a NUL character)")
        return super().to_internal_value(data)


@extend_schema_field({"type": "integer", "nullable": True, "description": "An inbound integration's id, or null."})
class IntegrationField(serializers.Field):
    """An inbound integration's id, or null for any (the model is looked up by name: campaigns
    sit below integrations and never import them)."""

    default_error_messages = {
        "invalid": "an integration id (a whole number) or null",
        "missing": "no integration has the id {value}",
        "outbound": "integration {value} sends to Segment; only an inbound integration triggers surveys",
    }

    def to_representation(self, value):
        return value.pk if value is not None else None

    def to_internal_value(self, data):
        if data is None:
            return None
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("invalid")
        text = str(data).strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 18:
            self.fail("invalid")
        integration = apps.get_model("integrations", "Integration").objects.filter(pk=int(text)).first()
        if integration is None:
            self.fail("missing", value=text)
        if not getattr(integration.behaviour(), "inbound", True):
            self.fail("outbound", value=text)
        return integration


class CampaignSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=200)
    metric = serializers.ChoiceField(choices=Metric.values, required=False, default=Metric.NPS)
    status = serializers.CharField(read_only=True)
    integration = IntegrationField(required=False, allow_null=True, default=None)
    trigger_events = EventNamesField(required=False, default=list)
    template = serializers.PrimaryKeyRelatedField(queryset=EmailTemplate.objects.all())
    question = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    contact_list = ListIdField(
        slug_field="list_id", queryset=MailingList.objects.all(), required=False, allow_null=True, default=None
    )
    reply_to = serializers.EmailField(max_length=320, required=False, allow_blank=True, default="")
    audience = AudienceField(default=dict)
    not_surveyed_days = serializers.IntegerField(
        min_value=0, max_value=MAX_DAYS, required=False, allow_null=True, default=None
    )
    sample_percent = serializers.IntegerField(min_value=1, max_value=100, required=False, default=100)
    delay_minutes = serializers.IntegerField(min_value=0, max_value=MAX_DELAY_MINUTES, required=False, default=0)
    throttle_days = serializers.IntegerField(
        min_value=0, max_value=MAX_DAYS, required=False, allow_null=True, default=None
    )
    reminders = ReminderSerializer(many=True, required=False, default=list)

    def to_representation(self, campaign: Campaign) -> dict:
        return {
            "id": campaign.pk,
            "name": campaign.name,
            "metric": campaign.metric,
            "status": campaign.status,
            "integration": campaign.integration_id,
            "trigger_events": list(campaign.trigger_events or []),
            "template": campaign.template_id,
            "question": campaign.question,
            "contact_list": campaign.contact_list.list_id if campaign.contact_list_id else None,
            "reply_to": campaign.reply_to,
            "audience": campaign.audience or {},
            "not_surveyed_days": campaign.not_surveyed_days,
            "sample_percent": campaign.sample_percent,
            "delay_minutes": campaign.delay_minutes,
            "throttle_days": campaign.throttle_days,
            "reminders": [
                {"delay_minutes": r.delay_minutes, "template": r.template_id} for r in campaign.reminders.all()
            ],
        }

    def validate_name(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("a name is required")
        taken = Campaign.objects.filter(name=value)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError("a campaign with this name exists")
        return value

    def validate_question(self, value: str) -> str:
        if "\x00" in value:
            raise serializers.ValidationError("the question cannot hold a NUL character")
        return value.strip()

    def validate_not_surveyed_days(self, value):
        return value or None

    def validate_throttle_days(self, value):
        return value or None

    def validate_reminders(self, value: list) -> list:
        if len(value) > MAX_REMINDERS:
            raise serializers.ValidationError(f"at most {MAX_REMINDERS} reminders")
        return value

    def validate(self, attrs: dict) -> dict:
        campaign = self.instance
        if campaign is not None and "metric" in attrs and attrs["metric"] != campaign.metric:
            if campaign.responses.exists():
                raise serializers.ValidationError(
                    {"metric": "the campaign has responses on its scale; make a new campaign for another metric"}
                )
        if campaign is not None and campaign.live and "template" in attrs:
            problem = template_problem(attrs["template"])
            if problem is not None:
                raise serializers.ValidationError({"template": f"{problem.code}: {problem.message}"})
        return attrs


class DispatchSerializer(serializers.ModelSerializer):
    class Meta:
        model = SurveyDispatch
        fields = ("id", "campaign", "contact", "status", "reason", "due_at", "sent_at")
        read_only_fields = fields


class ResponseSerializer(serializers.ModelSerializer):
    class Meta:
        model = SurveyResponse
        fields = ("id", "campaign", "contact", "email", "score", "comment", "created_at", "updated_at")
        read_only_fields = fields


class MetricsSerializer(serializers.Serializer):
    sent = serializers.IntegerField()
    responses = serializers.IntegerField()
    response_rate = serializers.FloatField(allow_null=True, help_text="Responses per survey sent, in percent.")
    score = serializers.FloatField(
        allow_null=True, help_text="NPS (−100…100), the CSAT percent, the CES mean or the 5-star mean."
    )
    distribution = serializers.DictField(child=serializers.IntegerField(), help_text='{"0": n, …} per score.')
    promoters = serializers.IntegerField(required=False, help_text="NPS only.")
    passives = serializers.IntegerField(required=False, help_text="NPS only.")
    detractors = serializers.IntegerField(required=False, help_text="NPS only.")
