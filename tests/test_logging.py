"""Structured logs: the ids of the account, gateway and order on every line — in a web request, in a task run
by a real worker process, and inside services (log_bind / log_context)."""
import io
import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.conf import settings as django_settings

from billmysales.logging import (
    ContextFilter,
    JsonFormatter,
    TextFormatter,
    log_bind,
    log_context,
    log_context_clear,
    task_context_close,
)
from gateways.models import Order
from sources.shopify.samples import sample_order
from tests.gateways.factories import GatewayFactory, OrderFactory
from tests.gateways.resilience_helpers import WEBHOOK_SECRET, wait_for, webhook_post


@pytest.fixture
def json_lines():
    """Root-logger lines formatted as production formats them (settings.LOGGING's json formatter), starting
    from an empty context (an earlier test may have run a service in this thread)."""
    log_context_clear()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter(fmt=django_settings.LOGGING["formatters"]["json"]["fmt"]))
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)


def test_a_json_line_carries_the_context_and_extra_fields(json_lines):
    with log_context(account_id=3, gateway_id=7, order_id=None):
        logging.getLogger("gateways.emission").warning("retry in %ss", 60, extra={"attempt": 2})
    logging.getLogger("gateways.emission").info("outside")

    inside, outside = json_lines()
    assert inside["message"] == "retry in 60s" and inside["level"] == "WARNING" and inside["logger"] == "gateways.emission"
    assert (inside["account_id"], inside["gateway_id"], inside["attempt"]) == (3, 7, 2)
    assert "order_id" not in inside and "timestamp" in inside
    assert "account_id" not in outside


def test_log_bind_lasts_until_the_task_context_closes(json_lines):
    log_bind(account_id=5, order_id=11)
    log_bind(order_id=12, gateway_id="")
    logging.getLogger("x").warning("bound")
    task_context_close()
    logging.getLogger("x").warning("closed")

    bound, closed = json_lines()
    assert (bound["account_id"], bound["order_id"]) == (5, 12) and "gateway_id" not in bound
    assert "account_id" not in closed


def test_a_text_line_ends_with_the_ids_and_keeps_the_traceback_below():
    log_context_clear()
    formatter = TextFormatter(fmt="%(levelname)s %(name)s %(message)s")
    record = logging.LogRecord("gateways", logging.ERROR, __file__, 1, "failed", None, None)
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    with log_context(order_id=42, account_id=3, request_id="abc"):
        ContextFilter().filter(record)

    first, *rest = formatter.format(record).splitlines()
    assert first == "ERROR gateways failed [account=3 order=42 request_id=abc]"
    assert rest[-1] == "ValueError: boom"


@pytest.mark.django_db
def test_a_dashboard_request_logs_with_the_signed_in_account(session_client, account, other_account, json_lines):
    theirs = OrderFactory(account=other_account, gateway=GatewayFactory(account=other_account))

    response = session_client.get(f"/orders/{theirs.pk}/", HTTP_X_REQUEST_ID="req-7f3a")

    assert response.status_code == 404 and response["X-Request-ID"] == "req-7f3a"
    [line] = [line for line in json_lines() if line["logger"] == "django.request"]
    assert line["message"] == f"Not Found: /orders/{theirs.pk}/" and line["status_code"] == 404
    assert (line["account_id"], line["request_id"]) == (account.pk, "req-7f3a")


@pytest.mark.django_db
def test_an_api_request_logs_with_the_api_keys_account(write_key_client, account, json_lines):
    response = write_key_client.get("/api/v1/orders/999999999/", HTTP_X_REQUEST_ID="bad id with spaces")

    assert response.status_code == 404
    [line] = [line for line in json_lines() if line["logger"] == "django.request"]
    assert line["account_id"] == account.pk and line["level"] == "WARNING"
    assert line["request_id"] == response["X-Request-ID"] != "bad id with spaces" and len(line["request_id"]) == 16


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.django_db(transaction=True)
def test_a_task_in_a_real_worker_logs_json_with_the_order_it_works_on(account, celery_worker_process, purge_broker):
    gateway = GatewayFactory(account=account, source__credentials={"webhook_secret": WEBHOOK_SECRET})
    worker = celery_worker_process(name="jsonlogs", concurrency=1, LOG_FORMAT="json")

    assert webhook_post(gateway, sample_order(number=9301), "log-1") == 200
    order = wait_for(lambda: Order.objects.filter(gateway=gateway, status="issued").first(), timeout=60,
                     describe=worker.log)

    lines = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    [issued] = [line for line in lines if line["message"].startswith("account=") and "issued DTE" in line["message"]]
    assert (issued["account_id"], issued["gateway_id"], issued["order_id"]) == (account.pk, gateway.pk, order.pk)
    # The ingest task runs the invoice it created (gateways.tasks.order_ingest_task) with the emission's id bound.
    assert issued["task"] == "gateways.tasks.order_ingest_task" and issued["emission_id"] == order.emissions.get().pk
    assert issued["logger"] == "gateways.emission" and issued["task_id"]
    # Celery's own lines about the ingest task carry the task's ids too.
    ingest = [line for line in lines if line.get("task") == "gateways.tasks.order_ingest_task"]
    assert ingest and all(line["event_id"] for line in ingest)
    assert any(line["message"].startswith("jsonlogs@") and line["message"].endswith(" ready.") for line in lines)


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_gunicorn_lines_are_json_and_an_access_line_carries_the_request_id():
    """docker-compose.yml's web command: gunicorn with ``--logger-class billmysales.access_log.GunicornLogger``
    writes its access and error lines in the application's JSON format, joined to it by ``request_id``."""
    root = Path(__file__).resolve().parent.parent
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "billmysales.settings.test", "LOG_FORMAT": "json"}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "billmysales.wsgi:application", "-b", f"127.0.0.1:{port}", "--workers", "1",
         "--access-logfile", "-", "--logger-class", "billmysales.access_log.GunicornLogger"],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(f"{base}/healthz"), timeout=60)
        answer = requests.get(f"{base}/no-such-page/?q=1", headers={"X-Request-ID": "trace-123", "User-Agent": "pytest-access"},
                              timeout=10)
        assert answer.status_code == 404 and answer.headers["X-Request-ID"] == "trace-123"
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)

    access = [json.loads(line) for line in out.splitlines() if line.strip()]  # not JSON: the test fails here
    [line] = [entry for entry in access if entry.get("path") == "/no-such-page/"]
    assert line["logger"] == "gunicorn.access" and line["level"] == "INFO" and line["message"] == "GET /no-such-page/ 404"
    assert (line["method"], line["query"], line["status_code"], line["request_id"], line["user_agent"]) == (
        "GET", "q=1", 404, "trace-123", "pytest-access")
    assert line["duration_ms"] >= 0 and line["bytes"] > 0 and line["remote_addr"] == "127.0.0.1" and "timestamp" in line
    booting = [json.loads(entry) for entry in err.splitlines() if "Booting worker" in entry]
    assert booting and all(entry["logger"] == "gunicorn.error" for entry in booting)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False
