"""One error body everywhere: ``{"error": {"code", "message", "fields"}}``.

``code`` is stable for programs (``invalid``, ``invalid_rut``, ``not_found``, ``throttled``,
``currency_not_supported``, ``biller_rejected``, …), ``message`` is for people, in the request's
language (Spanish by default), and ``fields`` maps each refused input field to its messages.
"""
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

GENERIC_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
    exceptions.ParseError: "parse_error",
}


# Refusals by the services that are about the state of things, not about the input.
STATUS_FOR_CODE = {
    "in_use": 409, "test_sale_required": 409, "not_issued": 409, "last_owner": 409, "already_member": 409,
    "credit_note_refused": 422, "permission_denied": 403, "no_factura": 409, "annulled": 409, "biller_check": 422,
}


class ApiError(exceptions.APIException):
    """A refusal with its own code and status: ``raise ApiError("in_use", "…", status=409)``."""

    def __init__(self, code: str, message: str, *, status: int = 400, fields: dict | None = None):
        super().__init__(detail=message, code=code)
        self.status_code = status
        self.error_code = code
        self.fields = fields or {}


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": str(message), "fields": fields or {}}}


def _messages(value) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value]
    if isinstance(value, dict):
        return [f"{key}: {'; '.join(_messages(item))}" for key, item in value.items()]
    return [str(value)]


def _first_code(codes) -> str | None:
    if isinstance(codes, str):
        return codes
    if isinstance(codes, dict):
        codes = list(codes.values())
    for item in codes or ():
        found = _first_code(item)
        if found:
            return found
    return None


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ApiError):
        response.data = error_body(exc.error_code, exc.detail, exc.fields)
        return response
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        fields = {name: _messages(value) for name, value in detail.items() if name not in ("detail", "non_field_errors")}
        general = _messages(detail.get("detail", [])) + _messages(detail.get("non_field_errors", []))
        code = _first_code(exc.get_codes()) or "invalid"
        if code in ("invalid", "required", "null", "blank", "invalid_choice", "does_not_exist"):
            code = "invalid"
        message = " ".join(general) or _("Los datos enviados no son válidos; revise los campos indicados.")
        response.data = error_body(code, message, fields)
        response.status_code = STATUS_FOR_CODE.get(code, response.status_code)
        return response
    code = next((name for cls, name in GENERIC_CODES.items() if isinstance(exc, cls)), getattr(exc, "default_code", "error"))
    response.data = error_body(code, exc.detail if isinstance(exc.detail, str) else _messages(exc.detail)[0])
    return response

