"""Bodies over ``BMS_MAX_BODY_BYTES`` get 413 with a JSON error, before anything reads them."""
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse


def _too_large() -> JsonResponse:
    limit = settings.BMS_MAX_BODY_BYTES
    return JsonResponse(
        {"error": {"code": "payload_too_large", "message": f"El cuerpo supera el máximo de {limit} bytes.", "fields": {}}},
        status=413,
    )


class RequestSizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        length = request.META.get("CONTENT_LENGTH") or ""
        if length.isdigit() and int(length) > settings.BMS_MAX_BODY_BYTES:
            return _too_large()
        return self.get_response(request)

    def process_exception(self, request, exception):
        # A body without Content-Length (chunked) that turns out too large while it is read.
        if isinstance(exception, RequestDataTooBig):
            return _too_large()
        return None
