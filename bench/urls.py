"""The product's URLs plus the reference view of the ingestion benchmark."""
from django.db import connection
from django.http import JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def bare_insert(request):
    """What a webhook costs at the least: the body stored with one INSERT (autocommit), acknowledged."""
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_bare (body) VALUES (%s)", [request.body.decode()])
    return JsonResponse({"received": True})


urlpatterns = [
    path("bench/bare/", bare_insert),
    path("", include("billmysales.urls")),
]
