"""CPU per document through the whole pipeline, excluding biller latency (DESIGN §5: ≤ 10 ms).

For N demo orders: ingest (parse, rules, cuadre check, upsert, emission row) and emission (claim,
attempt, Sandbox biller: folio, build, stamp, sign, schema validation, then Document and side-effect
rows), all in this process against PostgreSQL, with tasks published to Redis on commit as in
production. Prints this process's CPU time per document and the wall time; PostgreSQL's and Redis's
own CPU are not included (they run in other processes).

Run: ``.venv/bin/python scripts/testenv.py -- .venv/bin/python bench/pipeline_cpu.py [N]``
"""
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billmysales.settings.test")

import django

django.setup()

from django.core.management import call_command  # noqa: E402

from accounts.models import Account  # noqa: E402
from billers.models import BillerConnection  # noqa: E402
from gateways.emission import emission_run  # noqa: E402
from gateways.models import Document, Gateway  # noqa: E402
from gateways.services import order_ingest  # noqa: E402
from rules.models import RuleSet  # noqa: E402
from sources.models import SourceConnection  # noqa: E402
from sources.shopify.samples import sample_order  # noqa: E402


def make_gateway() -> Gateway:
    account = Account.objects.create(name=f"Bench {time.time_ns()}")
    source = SourceConnection.objects.create(account=account, name="Demo", platform="demo")
    biller = BillerConnection.objects.create(
        account=account, name="Sandbox", provider="sandbox", emisor_rut="76086428-5",
        emisor_razon_social="Bench SpA", emisor_giro="Venta al por menor por internet", emisor_acteco=479100,
        emisor_address="Av. Providencia 1234", emisor_comuna="Providencia",
    )
    return Gateway.objects.create(
        account=account, name="bench", source=source, biller=biller, ruleset=RuleSet.objects.create(account=account), active=True
    )


def run(gateway: Gateway, start: int, count: int) -> None:
    for number in range(start, start + count):
        order = order_ingest(gateway=gateway, raw=sample_order(number=number))
        emission_run(emission_id=order.emissions.get().pk)


def main(count: int) -> None:
    call_command("migrate", verbosity=0)
    gateway = make_gateway()
    run(gateway, 1, 20)  # warm-up: keys, CAFs and the schema load once per process
    cpu, wall = time.process_time(), time.perf_counter()
    run(gateway, 1000, count)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    issued = Document.objects.filter(order__gateway=gateway).count()
    assert issued == count + 20, issued
    print(f"{count} documents: {cpu / count * 1000:.2f} ms CPU per document in this process "
          f"(target <= 10 ms), {wall / count * 1000:.2f} ms wall, {count / wall:.0f} documents/s sequential")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
