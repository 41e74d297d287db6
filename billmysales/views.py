"""Error pages: JSON with the API's error body under /api/ and /hooks/, the dashboard's pages elsewhere."""
from django.http import HttpResponseServerError, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.utils.translation import gettext as _

from billmysales.api.errors import error_body

JSON_PREFIXES = ("/api/", "/hooks/")


def _wants_json(request) -> bool:
    return request.path.startswith(JSON_PREFIXES)


def not_found(request, exception=None):
    if _wants_json(request):
        return JsonResponse(error_body("not_found", _("No encontrado.")), status=404)
    return render(request, "404.html", status=404)


def permission_denied(request, exception=None):
    if _wants_json(request):
        return JsonResponse(error_body("permission_denied", _("Su rol no permite esta acción.")), status=403)
    return render(request, "403.html", status=403)


def server_error(request):
    if _wants_json(request):
        return JsonResponse(error_body("server_error", _("Error interno; el equipo fue notificado.")), status=500)
    # Without the request's context: the database or a context processor may be what failed.
    return HttpResponseServerError(loader.get_template("500.html").render())
