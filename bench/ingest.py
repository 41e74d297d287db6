"""Webhook ingestion against a bare Django view doing one INSERT of the same body (DESIGN §5).

Starts a throwaway PostgreSQL and Redis, gunicorn (3 sync workers, ``bench.settings``: production's)
and loads two URLs in turn with the same asyncio client (16 connections, a new TCP connection per
request as gunicorn's sync workers close each one):

- ``/bench/bare/``: a csrf-exempt Django view in the same project (same middleware and database
  settings) that INSERTs the body into a jsonb column and answers 200;
- ``/hooks/<token>/``: the product's webhook for a Demo store, each body a different signed order
  (~5.7 KB), stored as an inbound event and queued for ingestion (no worker runs: only the ack).

Then a fixed rate of 500 deliveries/s (open loop: latency counted from the scheduled time) on the
webhook. Prints deliveries/s, the ratio to the bare view (target ≥ 0.6), p50/p99, and the CPU per
request of gunicorn, PostgreSQL and the load generator.

Run: ``python bench/ingest.py [seconds per phase, default 10]`` (about 1.5 minutes).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import harness

CONNECTIONS = 16
RATE = 500
BODIES = 2000
SECRET = "bench-webhook-secret"


def setup_gateway():
    from accounts.models import Account
    from billers.models import BillerConnection
    from gateways.models import Gateway
    from rules.models import RuleSet
    from sources.models import SourceConnection

    account = Account.objects.create(name="Bench ingest")
    source = SourceConnection.objects.create(account=account, name="Demo", platform="demo", credentials={"webhook_secret": SECRET})
    biller = BillerConnection.objects.create(
        account=account, name="Sandbox", provider="sandbox", emisor_rut="76086428-5", emisor_razon_social="Bench SpA",
        emisor_giro="Venta al por menor por internet", emisor_acteco=479100, emisor_address="Av. Providencia 1234",
        emisor_comuna="Providencia",
    )
    return Gateway.objects.create(account=account, name="bench", source=source, biller=biller,
                                  ruleset=RuleSet.objects.create(account=account), active=True)


def requests_for(gateway, prefix: str):
    """(webhook request for delivery number n, bare view request for n): every delivery has its own id (the
    bodies, ~5.7 KB signed orders, are reused: the signature covers the body, not the delivery id)."""
    from sources.demo.webhooks import DELIVERY_HEADER, SIGNATURE_HEADER, TOPIC_HEADER, DemoWebhookReader
    from sources.shopify.samples import sample_order

    bodies = [json.dumps(sample_order(number=n)).encode() for n in range(1, BODIES + 1)]
    hook_heads = [(f"POST /hooks/{gateway.webhook_token}/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                   f"Content-Length: {len(body)}\r\nContent-Type: application/json\r\n"
                   f"{SIGNATURE_HEADER}: {DemoWebhookReader.sign(body, SECRET)}\r\n{TOPIC_HEADER}: orders/paid\r\n"
                   f"{DELIVERY_HEADER}: ").encode() for body in bodies]
    bare = [harness.http_request("POST", "/bench/bare/", body, {"Content-Type": "application/json"}) for body in bodies]

    def hook(n: int) -> bytes:
        return hook_heads[n % BODIES] + f"{prefix}-{n}\r\n\r\n".encode() + bodies[n % BODIES]

    return hook, (lambda n: bare[n % BODIES])


def measured(label: str, web: harness.Proc, run) -> tuple[harness.LoadResult, dict]:
    pg0, web0, me0 = harness.cpu_seconds(harness.postgres_pids()), web.cpu(), time.process_time()
    result = run()
    ok = max(result.ok, 1)
    cpu = {
        "gunicorn": (web.cpu() - web0) / ok * 1000,
        "postgres": (harness.cpu_seconds(harness.postgres_pids()) - pg0) / ok * 1000,
        "client": (time.process_time() - me0) / ok * 1000,
    }
    other = {s: n for s, n in result.statuses.items() if not 200 <= s < 300}
    print(f"{label:<34} {result.rate:7.0f}/s  p50 {result.pct(50):6.1f} ms  p99 {result.pct(99):6.1f} ms  "
          f"max {result.pct(100):7.1f} ms  errors {result.errors} non-2xx {other or 0}  "
          f"CPU ms/request: gunicorn {cpu['gunicorn']:.2f}, postgres {cpu['postgres']:.2f}, client {cpu['client']:.2f}",
          flush=True)
    return result, cpu


def main(seconds: float) -> None:
    with harness.servers() as env:
        harness.django_setup(env)
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE bench_bare (id bigserial PRIMARY KEY, body jsonb NOT NULL,"
                           " received_at timestamptz NOT NULL DEFAULT now())")
        gateway = setup_gateway()
        bare = requests_for(gateway, "unused")[1]
        port = harness.free_port()
        web = harness.gunicorn(env, port)
        try:
            harness.wait_http(port)
            print(f"machine before: {harness.machine_note()}", flush=True)
            rounds, hook_results = [], []
            for attempt in (1, 2):
                b, _ = measured(f"bare INSERT view, saturated #{attempt}", web,
                                lambda: harness.saturate(port, bare, CONNECTIONS, seconds))
                hooks = requests_for(gateway, f"saturated{attempt}")[0]
                h, _ = measured(f"webhook, saturated #{attempt}", web,
                                lambda hooks=hooks: harness.saturate(port, hooks, CONNECTIONS, seconds))
                rounds.append((b.rate, h.rate))
                hook_results.append(h)
            fixed_hooks = requests_for(gateway, "fixed")[0]
            fixed, _ = measured(f"webhook, fixed {RATE}/s", web, lambda: harness.fixed_rate(port, fixed_hooks, RATE, seconds))
            from gateways.models import InboundEvent

            stored = InboundEvent.objects.filter(gateway=gateway).count()
            # Warm-up requests are stored too, not counted: at least every counted acknowledgement is a stored delivery.
            acknowledged = sum(r.ok for r in (*hook_results, fixed))
            print(f"machine after: {harness.machine_note()}")
        finally:
            web.stop()
        bare_rate = sum(b for b, _ in rounds) / len(rounds)
        hook_rate = sum(h for _, h in rounds) / len(rounds)
        ratio = hook_rate / bare_rate
        print(f"\nratio webhook / bare view: {ratio:.2f} (rounds: {', '.join(f'{h / b:.2f}' for b, h in rounds)}; target >= 0.6) "
              f"{harness.mark(ratio, 0.6, True)}")
        print(f"fixed {RATE}/s: p99 {fixed.pct(99):.1f} ms (target < 50 ms) {harness.mark(fixed.pct(99), 50, False)}; "
              f"{fixed.ok} of {int(RATE * seconds)} acknowledged, {fixed.errors} errors")
        print(f"inbound events stored: {stored} (deliveries acknowledged in the measured windows: {acknowledged}) "
              f"{harness.mark(stored, acknowledged, True)}")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0)
