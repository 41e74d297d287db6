"""/healthz and /readyz against the real PostgreSQL and Redis of the test run (and a Redis of the test's own
that it stops, for the broker-down answer)."""
import time

import pytest
from django.db import connections

from tests.gateways.resilience_helpers import RedisServer, free_port


def test_healthz_answers_without_the_database_sessions_or_host_checks(client, settings):
    # No django_db mark: any database access here would raise.
    settings.ALLOWED_HOSTS = ["billing.example.cl"]
    settings.SECURE_SSL_REDIRECT = True

    response = client.get("/healthz", HTTP_HOST="localhost")

    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store" and not response.cookies


def test_healthz_refuses_writes(client):
    response = client.post("/healthz")

    assert response.status_code == 405 and response["Allow"] == "GET, HEAD"


@pytest.mark.django_db
def test_readyz_is_ready_when_database_and_broker_answer(client):
    response = client.get("/readyz/", HTTP_HOST="localhost")

    body = response.json()
    assert response.status_code == 200 and body["status"] == "ok", body
    assert body["checks"]["database"]["ok"] is True and body["checks"]["broker"]["ok"] is True
    assert "failed" not in body


@pytest.fixture
def own_redis():
    server = RedisServer().start()
    yield server
    server.close()


@pytest.mark.django_db
def test_readyz_names_the_broker_when_redis_is_stopped(client, settings, own_redis):
    settings.CELERY_BROKER_URL = own_redis.url
    assert client.get("/readyz").status_code == 200

    own_redis.crash()
    started = time.monotonic()
    response = client.get("/readyz")
    elapsed = time.monotonic() - started

    body = response.json()
    assert response.status_code == 503 and body["status"] == "unavailable"
    assert body["failed"] == ["broker"]
    assert body["checks"]["broker"] == {"ok": False, "error": "ConnectionError", "ms": body["checks"]["broker"]["ms"]}
    assert body["checks"]["database"]["ok"] is True
    assert own_redis.url not in response.content.decode()  # no connection string in a public answer
    assert elapsed < settings.BMS_READYZ_TIMEOUT + 2


@pytest.mark.django_db
def test_readyz_names_the_database_when_postgresql_does_not_answer(client, monkeypatch):
    # A port nobody listens on: the check opens its own connection, so the test's connection is untouched.
    monkeypatch.setitem(connections["default"].settings_dict, "PORT", str(free_port()))

    response = client.get("/readyz")

    body = response.json()
    assert response.status_code == 503 and body["failed"] == ["database"]
    assert body["checks"]["database"]["ok"] is False and body["checks"]["database"]["error"] == "OperationalError"
    assert body["checks"]["broker"]["ok"] is True
