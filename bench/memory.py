"""Worker memory after 100 k orders (DESIGN §5: < 250 MB RSS per worker process).

Starts a throwaway PostgreSQL and Redis and the production worker model (two processes of
``ingest,emit,poll:threads:64``), then delivers N Demo orders (100,000 by default) to a Sandbox
gateway (no latency: as fast as the box issues), in batches so the broker never holds more than
a few thousand. Prints each worker process's RSS after every 10 % and at the end, against the target.
Side effects (notify queue) are not consumed: ``bench/issuance.py`` drains them.

Run: ``python bench/memory.py [N]`` (about 20 minutes for 100,000 orders on a quiet 2-core box).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import harness

TARGET_MB = 250
WORKERS = ["ingest,emit,poll:threads:64", "ingest,emit,poll:threads:64"]
AHEAD = 3000  # deliveries queued ahead of the documents issued


def main(count: int) -> None:
    with harness.servers() as env:
        harness.django_setup(env)
        from bench.ingest import setup_gateway
        from gateways.models import Document
        from gateways.services import inbound_event_receive
        from sources.shopify.samples import sample_order

        gateway = setup_gateway()
        workers = [harness.celery_worker(env, f"m{i}", *harness.parse_worker(spec)) for i, spec in enumerate(WORKERS)]
        try:
            time.sleep(5)
            print(f"workers: {', '.join(WORKERS)}; machine: {harness.machine_note()}", flush=True)
            started = time.monotonic()
            delivered = issued = 0
            step = max(1, count // 10)
            next_report = step
            peak: dict[str, float] = {}
            while issued < count:
                while delivered < count and delivered - issued < AHEAD:
                    inbound_event_receive(gateway=gateway, delivery_id=f"mem-{delivered}", topic="orders/paid",
                                          payload=sample_order(number=delivered + 1))
                    delivered += 1
                time.sleep(0.5)
                issued = Document.objects.filter(order__gateway=gateway).count()
                for worker in workers:
                    rss = max(worker.rss_mb().values(), default=0.0)
                    peak[worker.name] = max(peak.get(worker.name, 0.0), rss)
                if issued >= next_report or issued >= count:
                    sizes = ", ".join(f"{w.name} {max(w.rss_mb().values(), default=0):.0f} MB" for w in workers)
                    print(f"{issued:>7} orders issued ({issued / (time.monotonic() - started):.0f}/s): RSS {sizes}", flush=True)
                    next_report += step
                if any(w.popen.poll() is not None for w in workers):
                    raise RuntimeError("a worker exited:\n" + "\n".join(w.log()[-2000:] for w in workers))
            final = {w.name: max(w.rss_mb().values(), default=0.0) for w in workers}
            worst = max(final.values())
            print(f"\nafter {count:,} orders: largest worker process {worst:.0f} MB RSS (peak "
                  f"{max(peak.values()):.0f} MB; target < {TARGET_MB} MB) {harness.mark(worst, TARGET_MB, False)}; "
                  f"{count / (time.monotonic() - started):.0f} orders/s; machine: {harness.machine_note()}")
        finally:
            for worker in workers:
                worker.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
