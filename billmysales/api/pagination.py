"""Keyset pagination on the primary key for every list: the first page costs the same with 1 M rows,
and no list ever counts its rows."""
from django.utils.translation import gettext as _
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination


class KeysetPagination(CursorPagination):
    """``page_size`` from 1 to 500 (default 50) and an opaque ``cursor``; a value that is neither is a 400,
    not silently the default."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise ValidationError({"page_size": [_("Debe ser un entero entre 1 y %(max)s.") % {"max": self.max_page_size}]})
        return int(raw)

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except Exception:  # DRF answers an invalid cursor with NotFound; it is bad input
            raise ValidationError({"cursor": [_("Cursor inválido: use el enlace next o previous de la página anterior.")]}) from None

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
        return parameters
