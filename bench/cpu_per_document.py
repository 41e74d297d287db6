"""CPU per document through the whole pipeline, excluding biller latency (DESIGN §5: ≤ 10 ms).

N Demo orders, each as the workers handle it, stage by stage (every order through one stage, then the
next): the delivery stored as the webhook stores it (``inbound_event_receive``: INSERT, wake-up key),
the dispatch round (claims the deliveries, publishes one ingest task each), the ingest task's work
(parse, rules, cuadre check, order and emission rows), the emission that task runs right after (claim,
attempt, Sandbox biller: folio, build, stamp, sign, schema validation; document) and the side effects
(PDF rendered, buyer e-mail built with PDF and XML attached, write-back, webhooks). All in this process
against a throwaway PostgreSQL, tasks published to Redis (nobody consumes them). Counts SQL statements
(this process), transactions (PostgreSQL's own counter) and task publishes per document; CPU of this
process and of PostgreSQL's backends per stage.

The Celery envelope of a task (receive, acknowledge, signals) is not included: ``bench/issuance.py``
measures the whole machine's CPU per document with real workers.

Run: ``python bench/cpu_per_document.py [N, default 500] [--profile]`` (about 1 minute).
"""
from __future__ import annotations

import cProfile
import pstats
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import harness

WARMUP = 30


def main(count: int, profile: bool) -> None:
    with harness.servers() as env:
        harness.django_setup(env)
        from django.db import connection

        from bench.ingest import setup_gateway
        from gateways import dispatch
        from gateways.emission import emission_run
        from gateways.models import Document, InboundEvent, Order, OrderStatus
        from gateways.services import inbound_event_process, inbound_event_receive, inbound_events_dispatch
        from gateways.side_effects import document_side_effects_run
        from sources.shopify.samples import sample_order

        gateway = setup_gateway()
        gateway.ruleset.email_buyer = True
        gateway.ruleset.save()
        payloads = [sample_order(number=n) for n in range(1, WARMUP + count + 1)]
        statements: Counter = Counter()
        publishes: Counter = Counter()
        real_publish = dispatch.publish

        def counting_publish(task_name, args, countdown=None):
            publishes[task_name.rsplit(".", 1)[-1]] += 1
            real_publish(task_name, args, countdown)

        dispatch.publish = counting_publish

        def count_statement(execute, sql, params, many, context):
            statements[sql.split(None, 1)[0].upper()] += 1
            return execute(sql, params, many, context)

        def stages(numbers: range, phases: dict | None = None) -> None:
            """Each stage for every order, then the next stage: CPU of this process and PostgreSQL per stage."""
            def timed(name, fn):
                pg0, cpu0 = harness.cpu_seconds(harness.postgres_pids()), time.process_time()
                result = fn()
                if phases is not None:
                    phases[name] = (time.process_time() - cpu0, harness.cpu_seconds(harness.postgres_pids()) - pg0)
                return result

            events = timed("receive (webhook's service call)", lambda: [
                inbound_event_receive(gateway=gateway, delivery_id=f"cpu-{n}", topic="orders/paid", payload=payloads[n])[0]
                for n in numbers])
            timed("dispatch round (queues the ingest tasks)", inbound_events_dispatch)
            queued: list[int] = []  # as the ingest task does: the emission it creates runs right after
            timed("ingest task (parse, rules, check, rows)", lambda: [
                inbound_event_process(event_id=event.pk, emission_queue=queued.append) for event in events])
            documents = timed("its emission (claim, Sandbox, record)", lambda: [
                emission_run(emission_id=emission_id) for emission_id in queued])
            timed("side effects (PDF, e-mail, write-back)", lambda: [
                document_side_effects_run(document_id=document.pk) for document in documents])

        stages(range(WARMUP))  # keys, CAFs, schemas and code paths load once per process
        statements.clear()
        publishes.clear()

        def xact_commits() -> int:
            with connection.cursor() as cursor:
                cursor.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
                return cursor.fetchone()[0]

        profiler = cProfile.Profile() if profile else None
        phases: dict = {}
        commits0 = xact_commits()
        wall0 = time.perf_counter()
        with connection.execute_wrapper(count_statement):
            if profiler:
                profiler.enable()
            stages(range(WARMUP, WARMUP + count), phases)
            if profiler:
                profiler.disable()
        wall = time.perf_counter() - wall0
        time.sleep(0.6)  # PostgreSQL reports its counters every 500 ms
        commits = xact_commits() - commits0 - 2
        dispatch.publish = real_publish

        issued = Document.objects.filter(order__gateway=gateway).count()
        assert issued == WARMUP + count, issued
        assert Order.objects.filter(gateway=gateway, status=OrderStatus.ISSUED).count() == WARMUP + count
        assert not InboundEvent.objects.filter(gateway=gateway, status=InboundEvent.Status.PENDING).exists()
        print(f"{count} documents, {wall / count * 1000:.2f} ms wall each ({count / wall:.0f}/s in one process)")
        print(f"{'CPU ms per document':<42} {'this process':>12} {'PostgreSQL':>11}")
        for name, (mine, pg) in phases.items():
            print(f"  {name:<40} {mine / count * 1000:12.2f} {pg / count * 1000:11.2f}")
        issuance = [v for k, v in phases.items() if not k.startswith("side effects")]
        cpu = sum(m for m, _ in issuance)
        pg = sum(p for _, p in issuance)
        side, side_pg = phases["side effects (PDF, e-mail, write-back)"]
        per = cpu / count * 1000
        print(f"issuance (receive + dispatch + ingest + emit): {per:.2f} ms this process + {pg / count * 1000:.2f} ms PostgreSQL "
              f"(target <= 10 ms) {harness.mark(per, 10, False)}; with side effects {(cpu + side) / count * 1000:.2f} ms "
              f"+ {(pg + side_pg) / count * 1000:.2f} ms PostgreSQL")
        total = sum(statements.values())
        print(f"SQL statements per document: {total / count:.1f} ("
              + ", ".join(f"{k} {v / count:.1f}" for k, v in statements.most_common()) + ")")
        print(f"transactions per document (PostgreSQL xact_commit): {commits / count:.1f}")
        print("task publishes per document: " + (", ".join(f"{k} {v / count:.2f}" for k, v in publishes.most_common()) or "0"))
        print(f"machine: {harness.machine_note()}")
        if profiler:
            stats = pstats.Stats(profiler)
            stats.sort_stats("cumulative").print_stats(60)
            stats.sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(int(args[0]) if args else 500, "--profile" in sys.argv)
