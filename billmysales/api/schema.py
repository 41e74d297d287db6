"""OpenAPI extensions: the Bearer API-key security scheme, and the error answers every operation can
give, all with the one error body, so the published schema matches what the API answers."""
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {"type": "string", "example": "invalid_rut"},
                "message": {"type": "string", "example": "'76.086.428-4' no es un RUT válido (dígito verificador o formato)."},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    "example": {"emisor_rut": ["'76.086.428-4' no es un RUT válido (dígito verificador o formato)."]},
                },
            },
        }
    },
}
ERRORS = {
    "400": _("Datos inválidos (`invalid`, `invalid_rut`, `parse_error`, …)."),
    "401": _("Sin credenciales o clave de API inválida o revocada."),
    "403": _("La clave o el rol no permite esta acción."),
    "404": _("No existe en esta cuenta."),
    "405": _("Método no permitido."),
    "409": _("En conflicto con el estado actual (en uso, en curso)."),
    "413": _("Cuerpo demasiado grande."),
    "415": _("Tipo de contenido no soportado (use application/json)."),
    "422": _("No se pudo hacer lo pedido (la orden no se puede emitir, Idempotency-Key reutilizada, …)."),
    "429": _("Demasiadas solicitudes; vea Retry-After."),
}


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "bms_<prefijo>_<secreto>",
            "description": _("Clave de API de la cuenta (lectura o escritura): `Authorization: Bearer bms_…`."),
        }


def add_error_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            # 404: the object in the path, or one named in the body or the query, is not in this account.
            codes = ["400", "401", "403", "404", "405", "429"]
            if method in ("post", "put", "patch"):
                codes += ["409", "413", "415", "422"]
            if method == "delete":
                codes.append("409")
            responses = operation.setdefault("responses", {})
            for code in codes:
                responses.setdefault(code, {"description": ERRORS[code], "content": {"application/json": {"schema": ref}}})
    return result
