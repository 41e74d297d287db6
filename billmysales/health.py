"""``/healthz``, ``/readyz`` and ``/metrics``, answered before any other middleware.

* ``/healthz`` — liveness: the process answers. Touches nothing else, so a database or broker outage
  never gets a healthy web container restarted.
* ``/readyz`` — readiness: PostgreSQL (a fresh connection running ``SELECT 1``) and the Celery broker
  (Redis ``PING``) each answer within ``BMS_READYZ_TIMEOUT`` seconds. 200 when both do; 503 naming the
  ones that failed. The body says which check failed and the error's class, never a connection string.
* ``/metrics`` — see ``billmysales.metrics`` (bearer token, or loopback only).

``OpsEndpointsMiddleware`` is the first middleware: these answers hold no account's data, so they skip
sessions, CSRF, the account context, the allowed-host check (a container healthcheck calls
``localhost``) and the HTTPS redirect (probes speak plain HTTP inside the network).
"""
from __future__ import annotations

import logging
import time
from contextlib import closing
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.http import JsonResponse

from .metrics import metrics_view

logger = logging.getLogger(__name__)


def healthz(request) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def check_database() -> None:
    """A new connection (not the request's), bounded by the connect and statement timeouts."""
    connection = connections["default"]
    timeout = settings.BMS_READYZ_TIMEOUT
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return
    params = connection.get_connection_params()
    params["connect_timeout"] = max(2, int(timeout))  # libpq's minimum is 2 seconds
    params["options"] = f"{params.get('options', '')} -c statement_timeout={int(timeout * 1000)}".strip()
    with closing(connection.Database.connect(**params)) as raw, raw.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_broker() -> None:
    url = str(settings.CELERY_BROKER_URL)
    timeout = settings.BMS_READYZ_TIMEOUT
    if url.startswith(("redis://", "rediss://", "unix://")):
        import redis

        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
    elif url.startswith("filesystem://"):
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        if not folder.is_dir():
            raise FileNotFoundError("the broker's folder does not exist")
    else:
        from kombu import Connection

        with Connection(url, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)


CHECKS = {"database": check_database, "broker": check_broker}


def readyz(request) -> JsonResponse:
    results, failed = {}, []
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            check()
            result = {"ok": True}
        except Exception as exc:
            logger.warning("readyz: %s unavailable: %s: %s", name, type(exc).__name__, exc)
            result = {"ok": False, "error": type(exc).__name__}
            failed.append(name)
        result["ms"] = round((time.monotonic() - started) * 1000, 1)
        results[name] = result
    body = {"status": "unavailable" if failed else "ok", "checks": results}
    if failed:
        body["failed"] = failed
    return JsonResponse(body, status=503 if failed else 200)


ROUTES = {"/healthz": healthz, "/readyz": readyz, "/metrics": metrics_view}


class OpsEndpointsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        view = ROUTES.get(request.path_info.rstrip("/") or "/")
        if view is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response = JsonResponse({"error": "GET"}, status=405)
            response["Allow"] = "GET, HEAD"
            return response
        response = view(request)
        response["Cache-Control"] = "no-store"
        return response
