"""Helpers for the crash, concurrency, broker-outage and failing-biller tests (test_resilience.py).

The Sandbox biller does not de-duplicate by reference, so its ``SandboxDocument`` rows count what was
really issued; the checks here compare them with the pipeline's own ``Document`` rows.
"""
import json
import os
import shutil
import smtplib
import socket
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import redis
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection
from django.test import Client

from billers.models import SandboxDocument
from gateways.models import Document, DocumentKind, Emission, EmissionStatus, Order, OrderStatus
from gateways.sweeper import stuck_work_requeue
from sources.demo.webhooks import DELIVERY_HEADER, SIGNATURE_HEADER, TOPIC_HEADER, DemoWebhookReader

WEBHOOK_SECRET = "s3cret-resilience"
SETTLED = (EmissionStatus.ISSUED, EmissionStatus.FAILED, EmissionStatus.HELD)


def wait_for(predicate, *, timeout: float, interval: float = 0.25, describe=lambda: ""):
    """Polls ``predicate`` until it returns something truthy; raises TimeoutError with ``describe()`` after
    ``timeout`` (not AssertionError, so an expected failure marked on an assertion never hides a stalled setup)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s: {describe()}")
        time.sleep(interval)


def closing_db_connection(fn):
    """Wraps a function run in a worker thread so the thread's own database connection is closed."""

    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            connection.close()

    return run


def webhook_post(gateway, payload: dict, delivery_id: str) -> int:
    """POSTs ``payload`` to the gateway's webhook address, signed like the store; returns the status code."""
    body = json.dumps(payload).encode()
    response = Client(raise_request_exception=False).post(
        f"/hooks/{gateway.webhook_token}/", body, content_type="application/json",
        headers={SIGNATURE_HEADER: DemoWebhookReader.sign(body, WEBHOOK_SECRET), DELIVERY_HEADER: delivery_id,
                 TOPIC_HEADER: "orders/paid"},
    )
    return response.status_code


def invoice_status_counts(gateway) -> Counter:
    return Counter(Emission.objects.filter(order__gateway=gateway, kind=DocumentKind.INVOICE).values_list("status", flat=True))


def all_invoices_settled(gateway, expected: int) -> bool:
    counts = invoice_status_counts(gateway)
    return sum(counts[status] for status in SETTLED) == expected


def sweep_until(done, *, timeout: float, every: float = 1.0, describe=lambda: "") -> int:
    """Runs the sweeper every ``every`` seconds until ``done()``; returns how many sweeps it took."""
    sweeps = 0
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not settled after {sweeps} sweeps in {timeout}s: {describe()}")
        stuck_work_requeue()
        sweeps += 1
        time.sleep(every)
    return sweeps


def sandbox_issued_per_reference(gateway) -> Counter:
    """How many documents the Sandbox biller issued for each of our references."""
    return Counter(SandboxDocument.objects.filter(connection=gateway.biller).values_list("reference", flat=True))


def assert_each_order_issued_once_or_held(gateway, *, expected_orders: int) -> Counter:
    """No order lost, none issued twice: each invoice is issued with one Document and one biller
    document for its reference, or held with a reason. Returns the count of final order statuses."""
    issued_at_biller = sandbox_issued_per_reference(gateway)
    assert max(issued_at_biller.values(), default=0) <= 1, {ref: n for ref, n in issued_at_biller.items() if n > 1}
    orders = list(Order.objects.filter(gateway=gateway).prefetch_related("emissions", "documents"))
    assert len(orders) == expected_orders
    for order in orders:
        [emission] = [e for e in order.emissions.all() if e.kind == DocumentKind.INVOICE]
        documents = [d for d in order.documents.all() if d.kind == DocumentKind.INVOICE]
        if emission.status == EmissionStatus.HELD:
            assert order.status == OrderStatus.HELD and emission.status_reason, (order.pk, emission.status_reason)
            assert documents == []
            continue
        assert (order.status, emission.status) == (OrderStatus.ISSUED, EmissionStatus.ISSUED), (
            order.pk, order.status, emission.status, emission.status_reason,
        )
        assert len(documents) == 1 and issued_at_biller[emission.reference] == 1, (order.pk, emission.reference)
        assert documents[0].biller_document_id == f"sandbox-{documents[0].tipo_dte}-{documents[0].folio}"
    assert Document.objects.filter(order__gateway=gateway).count() == sum(issued_at_biller.values())
    return Counter(order.status for order in orders)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A redis-server of the test's own on a free port, that the test can crash and bring back."""

    def __init__(self):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="bms-outage-redis-"))
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def start(self) -> "RedisServer":
        exe = os.environ.get("REDIS_SERVER") or shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir), "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--logfile", str(self.dir / "redis.log")],
            cwd=self.dir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._answers, timeout=20, interval=0.05, describe=self.log)
        return self

    def _answers(self) -> bool:
        assert self.proc.poll() is None, f"redis-server exited:\n{self.log()}"
        try:
            return self.client().ping()
        except redis.ConnectionError:
            return False

    def idle(self) -> bool:
        """No message queued and none delivered but unacknowledged ("unacked" is kombu's hash of those)."""
        client = self.client()
        return client.hlen("unacked") == 0 and not any(client.llen(queue) for queue in ("ingest", "emit", "poll", "notify"))

    def crash(self) -> None:
        """Stops the server at once, dropping every queued message (no persistence), as an outage would."""
        self.client().shutdown(nosave=True)
        self.proc.wait(timeout=10)

    def log(self) -> str:
        path = self.dir / "redis.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


class FailingSmtpBackend(BaseEmailBackend):
    """The mail server hangs up, as smtplib reports it."""

    def send_messages(self, email_messages):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed by smtp.example.cl")


class EmailApiError(Exception):
    """What an email-provider backend (an HTTP API, e.g. django-anymail's AnymailAPIError) raises."""


class FailingEmailApiBackend(BaseEmailBackend):
    """An email provider's HTTP API answers 503."""

    def send_messages(self, email_messages):
        raise EmailApiError("ESP API responded 503 Service Unavailable")
