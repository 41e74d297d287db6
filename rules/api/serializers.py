"""The rules as the API reads and writes them: every field typed, so a value of the wrong JSON type is a
400 naming the field, never a 500."""
from rest_framework import serializers

from billmysales.api.fields import StrictCharField, StrictModelSerializer

from ..models import RuleSet
from ..services import RULESET_FIELDS

LIST_FIELDS = ("factura_choice_values", "exclude_tags", "exclude_skus", "exclude_channels", "exempt_skus", "exempt_tags")


class RuleSetSerializer(StrictModelSerializer):
    field_mapping = serializers.DictField(child=StrictCharField(max_length=2000, allow_blank=True), required=False)
    min_amount = serializers.IntegerField(min_value=0, max_value=10**12, required=False)

    class Meta:
        model = RuleSet
        fields = list(RULESET_FIELDS) + ["updated_at"]
        read_only_fields = ["updated_at"]

    def get_fields(self):
        fields = super().get_fields()
        for name in LIST_FIELDS:
            fields[name] = serializers.ListField(
                child=StrictCharField(max_length=200), max_length=500, required=False
            )
        return fields
