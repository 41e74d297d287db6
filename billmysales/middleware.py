"""Bodies over ``BMS_MAX_BODY_BYTES`` get 413 with a JSON error, before anything reads them."""
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.utils import translation
from django.utils.translation import gettext as _


def _too_large(request) -> JsonResponse:
    # Answered before LocaleMiddleware has run: the request's language is read here.
    with translation.override(translation.get_language_from_request(request)):
        message = _("El cuerpo supera el máximo de %(max)s bytes.") % {"max": settings.BMS_MAX_BODY_BYTES}
    return JsonResponse({"error": {"code": "payload_too_large", "message": message, "fields": {}}}, status=413)


class RequestSizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        length = request.META.get("CONTENT_LENGTH") or ""
        if length.isdigit() and int(length) > settings.BMS_MAX_BODY_BYTES:
            return _too_large(request)
        return self.get_response(request)

    def process_exception(self, request, exception):
        # A body without Content-Length (chunked) that turns out too large while it is read.
        if isinstance(exception, RequestDataTooBig):
            return _too_large(request)
        return None
