"""Strict input fields: a text field refuses a number or a boolean instead of turning it into text, so
a client sending the wrong JSON type learns it (400) rather than storing "0"."""
from rest_framework import serializers


class StrictTextMixin:
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(StrictTextMixin, serializers.CharField):
    pass


class StrictEmailField(StrictTextMixin, serializers.EmailField):
    pass


class StrictURLField(StrictTextMixin, serializers.URLField):
    pass


class StrictModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer whose text fields are strict."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        **{model_field: {serializers.CharField: StrictCharField, serializers.EmailField: StrictEmailField,
                         serializers.URLField: StrictURLField}.get(field, field)
           for model_field, field in serializers.ModelSerializer.serializer_field_mapping.items()},
    }
