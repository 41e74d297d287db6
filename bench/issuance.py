"""End-to-end issuance with the biller answering in 300 ms (DESIGN §5: ≥ 150 documents/s).

Starts a throwaway PostgreSQL and Redis, the LibreDTE simulator (every API call answered after
``--latency`` ms, 300 by default) in its own process, and Celery workers as configured below. Then N
Demo orders (1,000 by default) are delivered as inbound events with their ingest tasks queued, and
the clock runs from the first delivery until every order has its document. Each order is then
checked to have exactly ONE document, and LibreDTE exactly one issued document per reference.

Side effects (the document's XML and PDF fetched from LibreDTE, the buyer's e-mail) run on the
``notify`` queue, which is not consumed while the clock runs: the simulator renders each PDF with the
product's own renderer (~15 ms of CPU on this same machine, a real LibreDTE does it on its servers),
which would make the simulated biller the largest CPU user of the box. They are drained afterwards
and their rate printed separately.

Workers (``--worker QUEUES:POOL:CONCURRENCY``, repeatable; default: the production model, two
processes of ``ingest,emit:threads:64``). Prints documents/s, the CPU each process group used per
document, SQL connections in use, and the ratio to the target.

Run: ``python bench/issuance.py [--orders N] [--latency MS] [--worker ...] [--skip-side-effects]``
(about 2 minutes).
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import harness

DEFAULT_WORKERS = ["ingest,emit:threads:64", "ingest,emit:threads:64"]
SIMULATOR = """
import os, sys, signal, threading
sys.path.insert(0, {root!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
import django
django.setup()
from simulators.libredte import LibreDTESimulator
sim = LibreDTESimulator(port={port}, exact_codigo=False).start()
if {latency}:
    sim.faults.add(route="*", kind="delay", delay_ms={latency})
print("ready", sim.url, flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait()
"""


def setup_gateway(sim_url: str):
    from accounts.models import Account
    from billers.models import BillerConnection
    from gateways.models import Gateway
    from rules.models import RuleSet
    from simulators.libredte import DEFAULT_HASH
    from sources.models import SourceConnection

    account = Account.objects.create(name=f"Bench issuance {time.time_ns()}")
    source = SourceConnection.objects.create(account=account, name="Demo", platform="demo",
                                             credentials={"webhook_secret": "bench"})
    biller = BillerConnection.objects.create(
        account=account, name="LibreDTE", provider="libredte", emisor_rut="76192083-9", emisor_razon_social="Empresa Demo SpA",
        emisor_giro="Venta al por menor por internet", emisor_acteco=479100, emisor_address="Av. Libertador 1449",
        emisor_comuna="Santiago", credentials={"api_hash": DEFAULT_HASH}, config={"base_url": sim_url},
    )
    return Gateway.objects.create(account=account, name="bench", source=source, biller=biller,
                                  ruleset=RuleSet.objects.create(account=account), active=True)


def check_exactly_once(gateway, sim_url: str, expected: int) -> None:
    """Every order issued with one Document, and LibreDTE holds one document per reference."""
    import requests

    from gateways.models import Document, Emission, EmissionStatus, Order, OrderStatus

    assert Order.objects.filter(gateway=gateway).count() == expected
    assert Order.objects.filter(gateway=gateway, status=OrderStatus.ISSUED).count() == expected, Counter(
        Order.objects.filter(gateway=gateway).values_list("status", flat=True))
    per_order = Counter(Document.objects.filter(order__gateway=gateway).values_list("order_id", flat=True))
    assert len(per_order) == expected and set(per_order.values()) == {1}, per_order.most_common(3)
    assert Emission.objects.filter(order__gateway=gateway, status=EmissionStatus.ISSUED).count() == expected
    state = requests.get(f"{sim_url}/_sim/state", timeout=10).json()
    at_biller = sum(state["state"]["issued"].values())
    assert at_biller == expected, f"LibreDTE issued {at_biller} documents for {expected} orders"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--latency", type=int, default=300)
    parser.add_argument("--worker", action="append", default=None)
    parser.add_argument("--skip-side-effects", action="store_true")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    workers_spec = [harness.parse_worker(w) for w in (args.worker or DEFAULT_WORKERS)]

    with harness.servers() as env:
        harness.django_setup(env)
        from django.db import connection

        from gateways.models import Document, Emission, SideEffect
        from gateways.services import inbound_event_receive
        from sources.shopify.samples import sample_order

        port = harness.free_port()
        sim = harness.start("libredte", [harness.PYTHON, "-c", SIMULATOR.format(root=str(harness.ROOT), port=port,
                                                                                 latency=args.latency)],
                            env, ready="ready")
        sim_url = f"http://127.0.0.1:{port}"
        gateway = setup_gateway(sim_url)
        payloads = [sample_order(number=n) for n in range(1, args.orders + 1)]
        workers = []
        try:
            # The orders are queued first (deliveries stored, ingest tasks in the broker); the clock runs from the
            # first one a worker took to the last document, so the workers' start-up is not counted.
            for number, payload in enumerate(payloads):
                inbound_event_receive(gateway=gateway, delivery_id=f"issuance-{number}", topic="orders/paid", payload=payload)
            print(f"workers: {', '.join(f'{q}:{p}:{c}' for q, p, c in workers_spec)}; biller latency {args.latency} ms per call")
            print(f"machine before: {harness.machine_note()}", flush=True)
            sim0, pg0, me0 = sim.cpu(), harness.cpu_seconds(harness.postgres_pids()), time.process_time()
            started = time.monotonic()
            for index, (queues, pool, concurrency) in enumerate(workers_spec):
                workers.append(harness.celery_worker(env, f"w{index}", queues, pool, concurrency))
            issued = 0
            peak_connections = 0
            deadline = started + args.timeout
            while issued < args.orders and time.monotonic() < deadline:
                time.sleep(0.5)
                issued = Document.objects.filter(order__gateway=gateway).count()
                with connection.cursor() as cursor:
                    cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
                    peak_connections = max(peak_connections, cursor.fetchone()[0])
            elapsed = time.monotonic() - started
            first = Emission.objects.filter(order__gateway=gateway).order_by("created_at").values_list("created_at", flat=True).first()
            last = Document.objects.filter(order__gateway=gateway).order_by("-issued_at").values_list("issued_at", flat=True).first()
            seconds = (last - first).total_seconds() if issued == args.orders else elapsed
            cpu = {w.name: w.cpu() for w in workers}  # start-up included: a few hundred ms each
            sim_cpu, pg_cpu = sim.cpu() - sim0, harness.cpu_seconds(harness.postgres_pids()) - pg0
            me_cpu = time.process_time() - me0
            rss = {w.name: max(w.rss_mb().values(), default=0) for w in workers}
            print(f"machine after: {harness.machine_note()}")
            rate = issued / seconds
            print(f"\n{issued} of {args.orders} orders issued in {seconds:.1f} s (first order taken to last document): "
                  f"{rate:.1f} documents/s (target >= 150) {harness.mark(rate, 150, True)}")
            per = 1000 / max(issued, 1)
            print("CPU ms per document: " + ", ".join(f"{name} {value * per:.2f}" for name, value in cpu.items())
                  + f", workers together {sum(cpu.values()) * per:.2f}, PostgreSQL {pg_cpu * per:.2f}, "
                  f"LibreDTE simulator {sim_cpu * per:.2f}, bench driver {me_cpu * per:.2f}")
            machine = sum(cpu.values()) + sim_cpu + pg_cpu + me_cpu
            print(f"machine CPU used: {machine / seconds:.2f} of 2 cores; peak PostgreSQL connections {peak_connections}; "
                  f"worker RSS (largest process) " + ", ".join(f"{k} {v:.0f} MB" for k, v in rss.items()))
            if issued == args.orders:
                check_exactly_once(gateway, sim_url, args.orders)
                print(f"checked: {args.orders} orders, each with exactly one document; LibreDTE issued {args.orders}")
            else:
                print(f"NOT FINISHED in {args.timeout:.0f} s")
            if not args.skip_side_effects and issued == args.orders:
                notify = harness.celery_worker(env, "notify", "notify", "threads", 64)
                workers.append(notify)
                t0, n0, s0 = time.monotonic(), notify.cpu(), sim.cpu()
                pending = SideEffect.objects.filter(document__order__gateway=gateway, outcome=SideEffect.Outcome.PENDING)
                while pending.exists() and time.monotonic() - t0 < args.timeout:
                    time.sleep(0.5)
                took = time.monotonic() - t0
                print(f"side effects of {issued} documents (XML and PDF fetched, e-mail built): {took:.1f} s including the "
                      f"worker's start, {issued / took:.1f} documents/s; CPU ms per document: notify worker "
                      f"{(notify.cpu() - n0) * per:.2f}, LibreDTE simulator (PDF rendering) {(sim.cpu() - s0) * per:.2f}")
        finally:
            for worker in workers:
                worker.stop()
            sim.stop()


if __name__ == "__main__":
    main()
