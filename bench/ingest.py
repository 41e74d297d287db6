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
BODIES = 4000
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


def requests_for(gateway, start: int) -> tuple[list[bytes], list[bytes]]:
    from sources.demo.webhooks import DELIVERY_HEADER, SIGNATURE_HEADER, TOPIC_HEADER, DemoWebhookReader
    from sources.shopify.samples import sample_order

    hooks, bare = [], []
    for n in range(start, start + BODIES):
        body = json.dumps(sample_order(number=n)).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: DemoWebhookReader.sign(body, SECRET),
                   DELIVERY_HEADER: f"bench-{n}", TOPIC_HEADER: "orders/paid"}
        hooks.append(harness.http_request("POST", f"/hooks/{gateway.webhook_token}/", body, headers))
        bare.append(harness.http_request("POST", "/bench/bare/", body, {"Content-Type": "application/json"}))
    return hooks, bare


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
        hooks, bare = requests_for(gateway, 100_000)
        fixed_hooks, _ = requests_for(gateway, 200_000)
        port = harness.free_port()
        web = harness.gunicorn(env, port)
        try:
            harness.wait_http(port)
            print(f"machine before: {harness.machine_note()}", flush=True)
            rounds = []
            for attempt in (1, 2):
                b, _ = measured(f"bare INSERT view, saturated #{attempt}", web,
                                lambda: harness.saturate(port, bare, CONNECTIONS, seconds))
                h, _ = measured(f"webhook, saturated #{attempt}", web,
                                lambda half=hooks[attempt - 1::2]: harness.saturate(port, half, CONNECTIONS, seconds))
                rounds.append((b.rate, h.rate))
            fixed, _ = measured(f"webhook, fixed {RATE}/s", web, lambda: harness.fixed_rate(port, fixed_hooks, RATE, seconds))
            from gateways.models import InboundEvent

            stored = InboundEvent.objects.filter(gateway=gateway).count()
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
        print(f"inbound events stored: {stored}")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0)
