"""The affiliates API's shapes (CONTRACT.md "Affiliates"). Money is a decimal string in the
order's currency ("12.50"); ids are integers."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from rest_framework import serializers

from affiliates.codes import code_clean
from affiliates.models import MONEY, Affiliate, AffiliateStatus, CommissionType, Conversion, ConversionStatus, Offer

CENT = Decimal("0.01")


class MoneyField(serializers.DecimalField):
    """A decimal string with at least two decimals ("12.50"), and more only when stored."""

    def __init__(self, **kwargs):
        super().__init__(**MONEY, **kwargs)

    def to_representation(self, value):
        value = Decimal(value)
        return str(value.quantize(CENT) if value == value.quantize(CENT) else value.normalize())


class SkuRatesField(serializers.JSONField):
    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if not isinstance(data, dict):
            raise serializers.ValidationError('must be an object of SKU to rate, e.g. {"SKU-1": 15}')
        if len(data) > 1000:
            raise serializers.ValidationError("at most 1,000 SKUs")
        rates = {}
        for sku, rate in data.items():
            if not str(sku).strip() or len(str(sku)) > 255:
                raise serializers.ValidationError("every SKU must be 1 to 255 characters")
            if isinstance(rate, bool) or not isinstance(rate, int | float | str):
                raise serializers.ValidationError(f"the rate of {sku!r} must be a number")
            try:
                value = Decimal(str(rate))
            except InvalidOperation:
                raise serializers.ValidationError(f"the rate of {sku!r} must be a number") from None
            if not value.is_finite() or value < 0 or value >= Decimal("1e14"):
                raise serializers.ValidationError(f"the rate of {sku!r} must be 0 or more")
            rates[str(sku).strip()] = rate
        return rates


class OfferSerializer(serializers.ModelSerializer):
    commission_type = serializers.ChoiceField(choices=CommissionType.values, default=CommissionType.PERCENT)
    commission_value = MoneyField(min_value=Decimal(0), default=Decimal(0))
    sku_rates = SkuRatesField(required=False, default=dict)
    cookie_days = serializers.IntegerField(min_value=0, max_value=3650, default=30)
    landing_url = serializers.URLField(max_length=2000, required=False, allow_blank=True, default="")
    auto_approve_days = serializers.IntegerField(min_value=0, max_value=3650, required=False, allow_null=True)

    class Meta:
        model = Offer
        fields = (
            "id",
            "name",
            "commission_type",
            "commission_value",
            "sku_rates",
            "cookie_days",
            "landing_url",
            "auto_approve_days",
        )

    def validate(self, attrs: dict) -> dict:
        kind = attrs.get("commission_type", getattr(self.instance, "commission_type", CommissionType.PERCENT))
        value = attrs.get("commission_value", getattr(self.instance, "commission_value", 0))
        if kind == CommissionType.PERCENT and value > 100:
            raise serializers.ValidationError({"commission_value": "a percent is at most 100"})
        return attrs


class AddressField(serializers.JSONField):
    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise serializers.ValidationError("must be an object (street, city, state, postalCode, country)")
        return data


class AffiliateSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(max_length=320)
    first_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    address = AddressField(required=False)
    status = serializers.ChoiceField(choices=AffiliateStatus.values, default=AffiliateStatus.PENDING)
    offer = serializers.PrimaryKeyRelatedField(queryset=Offer.objects.all(), required=False, allow_null=True)
    referral_code = serializers.CharField(
        max_length=32, required=False, help_text="Letters, digits, - and _ (3 to 32); made for you when left out."
    )
    referral_link = serializers.CharField(read_only=True)
    properties = serializers.JSONField(read_only=True, help_text="Engage audiences and computed traits.")
    contact = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Affiliate
        fields = (
            "id",
            "email",
            "first_name",
            "last_name",
            "address",
            "status",
            "offer",
            "referral_code",
            "referral_link",
            "properties",
            "contact",
        )

    def _unique(self, field: str, value):
        taken = Affiliate.objects.filter(**{field: value})
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError(f"another affiliate has this {field.replace('_', ' ')}")

    def validate_email(self, value: str) -> str:
        value = value.strip().lower()
        self._unique("email", value)
        return value

    def validate_referral_code(self, value: str) -> str:
        code = code_clean(value)
        if code is None:
            raise serializers.ValidationError("use 3 to 32 letters, digits, - or _")
        self._unique("referral_code", code)
        return code


class ConversionSerializer(serializers.ModelSerializer):
    amount = MoneyField(read_only=True)
    commission = MoneyField(read_only=True)

    class Meta:
        model = Conversion
        fields = (
            "id",
            "affiliate",
            "order_id",
            "amount",
            "currency",
            "commission",
            "status",
            "reason",
            "created_at",
        )
        read_only_fields = fields


class ConversionFilterSerializer(serializers.Serializer):
    affiliate = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    status = serializers.ChoiceField(choices=ConversionStatus.values, required=False)


class AffiliateFilterSerializer(serializers.Serializer):
    email = serializers.CharField(required=False, max_length=320)
