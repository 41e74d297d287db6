"""Strict query filters: a value of the wrong type is a 400 naming the parameter, never read loosely
(``tipo_dte=0.5`` is not an integer, ``fecha_to=`` is not a date, a date-time needs its time)."""
from datetime import UTC, date, datetime

from django import forms
from django.utils import timezone
from django.utils.translation import gettext as _
from django_filters import rest_framework as filters


class _PresentMeansValid:
    """A parameter sent empty is invalid (absent is fine)."""

    def to_python(self, value):
        if value == "":
            raise forms.ValidationError(_("Si se envía, no puede estar vacío."), code="invalid")
        return super().to_python(value)


class StrictIntegerField(_PresentMeansValid, forms.IntegerField):
    pass


class StrictDateField(forms.DateField):
    def to_python(self, value):
        if value is None:
            return None
        try:
            return date.fromisoformat(value) if isinstance(value, str) else value
        except ValueError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


class StrictDateTimeField(forms.DateTimeField):
    def to_python(self, value):
        if value is None:
            return None
        if not isinstance(value, str) or "T" not in value:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed, timezone.get_current_timezone())
        # PostgreSQL accepts offsets up to ±15:59; Python up to ±23:59. Compare in UTC.
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


class StrictBooleanField(forms.NullBooleanField):
    # The select widget reads anything unknown as "not given"; the raw text must reach to_python.
    widget = forms.TextInput

    def to_python(self, value):
        if value is None:
            return None
        if value in ("true", "True", "1"):
            return True
        if value in ("false", "False", "0"):
            return False
        raise forms.ValidationError(_("Debe ser true o false."), code="invalid")

    def validate(self, value):
        pass


class BooleanFilter(filters.BooleanFilter):
    field_class = StrictBooleanField

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # django-filter's REST BooleanWidget reads unknown text as "not given"; keep the raw text.
        self.extra["widget"] = forms.TextInput


class StrictChoiceField(_PresentMeansValid, forms.ChoiceField):
    pass


class ChoiceFilter(filters.ChoiceFilter):
    field_class = StrictChoiceField


class IntegerFilter(filters.NumberFilter):
    field_class = StrictIntegerField


class DateFilter(filters.DateFilter):
    field_class = StrictDateField


class DateTimeFilter(filters.IsoDateTimeFilter):
    field_class = StrictDateTimeField
