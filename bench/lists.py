"""Order lists with 1 M orders in one account and 10 k in another (DESIGN §5: first page < 150 ms).

Starts a throwaway PostgreSQL and Redis, fills them with SQL (orders with a realistic ~6 KB Shopify
payload and decision, their emissions and documents; most issued, some failed, held, waiting or
skipped; a third with a buyer RUT), VACUUM ANALYZE, then starts gunicorn (3 sync workers, production
settings) and times each page over HTTP on loopback, 20 times after one untimed request:

- the dashboard's orders page (``/orders/``, signed in) and the API's list (``/api/v1/orders/``, API key),
- filtered by status (``failed``: 5 % of the rows),
- searched by order number, by buyer RUT and by document folio,

for the big account and the small one. Prints p50 / p95 / max per page against the target, and the
EXPLAIN (ANALYZE, BUFFERS) of the slowest SQL statement of the slowest page.

``--sizes 10000,100000,1000000`` measures at each size of the big account in turn (the data grow
between the rounds): pages should stay flat (``bench/growth.py`` uses it).

Run: ``python bench/lists.py [--sizes N,...]`` (about 6 minutes for 1 M orders, most of it filling).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import harness

SMALL = 10_000
REPEAT = 20
TARGET_MS = 150
BATCH = 100_000
RUT = "76192083-9"  # the buyer searched by RUT (valid check digit); a few of its orders are spread over the account


def make_account(name: str):
    from accounts.models import Account, Membership, Role, User
    from accounts.services import Actor, api_key_create
    from billers.models import BillerConnection
    from gateways.models import Gateway
    from rules.models import RuleSet
    from sources.models import SourceConnection

    account = Account.objects.create(name=name)
    user = User.objects.create_user(email=f"owner-{account.pk}@bench.cl", password="bench-password-123")
    Membership.objects.create(user=user, account=account, role=Role.OWNER)
    source = SourceConnection.objects.create(account=account, name="Demo", platform="demo", credentials={"webhook_secret": "b"})
    biller = BillerConnection.objects.create(
        account=account, name="Sandbox", provider="sandbox", emisor_rut="76086428-5", emisor_razon_social="Bench SpA",
        emisor_giro="Venta al por menor", emisor_acteco=479100, emisor_address="Av. Providencia 1234", emisor_comuna="Providencia",
    )
    gateway = Gateway.objects.create(account=account, name="bench", source=source, biller=biller,
                                     ruleset=RuleSet.objects.create(account=account), active=True)
    _, key = api_key_create(account=account, name="bench", scope="read", actor=Actor(user=user, role=Role.OWNER))
    return account, user, gateway, key


FILL = """
WITH g AS (SELECT generate_series(%(start)s::bigint, %(stop)s::bigint - 1) AS n),
o AS (
  INSERT INTO gateways_order (account_id, gateway_id, external_id, number, status, status_reason, payment_status, paid_total,
      currency, buyer_name, buyer_email, buyer_rut, raw, decision, is_test, backfill, source_created_at, received_at, updated_at)
  SELECT %(account)s, %(gateway)s, (5100000000 + n)::text, '#' || n,
         CASE WHEN n %% 20 = 0 THEN 'failed' WHEN n %% 20 = 1 THEN 'held' WHEN n %% 20 = 2 THEN 'waiting'
              WHEN n %% 20 = 3 THEN 'skipped' ELSE 'issued' END,
         CASE WHEN n %% 20 IN (0, 1) THEN 'El facturador rechazó el documento' ELSE '' END,
         'paid', 10000 + n %% 90000, 'CLP', 'Cliente ' || n, 'cliente' || (n %% 200000) || '@example.cl',
         CASE WHEN n %% 3 = 0 THEN (10000000 + (n * 7919) %% 300000)::text || '-' || (n %% 10)::text ELSE '' END,
         jsonb_set(jsonb_set(%(raw)s::jsonb, '{id}', to_jsonb(5100000000 + n)), '{name}', to_jsonb('#' || n)),
         %(decision)s::jsonb, false, false,
         %(t0)s::timestamptz + n * interval '2 seconds', %(t0)s::timestamptz + n * interval '2 seconds',
         %(t0)s::timestamptz + n * interval '2 seconds'
  FROM g RETURNING id, account_id, status, paid_total, received_at
),
e AS (
  INSERT INTO gateways_emission (account_id, order_id, kind, sequence, reference, status, status_reason, sale, prepared,
      refund_external_id, attempt_count, created_at, updated_at)
  SELECT account_id, id, 'invoice', 1, 'bms-' || account_id || '-' || id || '-F1',
         CASE WHEN status = 'issued' THEN 'issued' ELSE 'failed' END, '', '{}'::jsonb, '{}'::jsonb, '', 1, received_at, received_at
  FROM o WHERE status IN ('issued', 'failed') RETURNING id, account_id, order_id, status, created_at
)
INSERT INTO gateways_document (account_id, order_id, emission_id, kind, sequence, tipo_dte, folio, fecha, mnt_total, totals,
    biller_id, biller_document_id, certification, xml, pdf, pdf_url, sii_track_id, sii_status, sii_status_detail, issued_at)
SELECT account_id, order_id, id, 'invoice', 1, 39, order_id, created_at::date, 30000, '{}'::jsonb, %(biller)s, '', true,
       '', '', '', '', 'unknown', '', created_at
FROM e WHERE status = 'issued'
"""


def fill(gateway, start: int, stop: int) -> None:
    from django.db import connection

    from sources.shopify.samples import sample_order

    raw = json.dumps(sample_order(number=1))
    decision = json.dumps({"action": "emit", "document_type": 39, "manual": False, "reasons": [
        {"code": "default", "message": "Boleta por defecto", "rule": None}], "decided_at": "2026-11-20T10:00:00+00:00"})
    with connection.cursor() as cursor:
        for lo in range(start, stop, BATCH):
            cursor.execute(FILL, {"start": lo, "stop": min(stop, lo + BATCH), "account": gateway.account_id, "gateway": gateway.pk,
                                  "biller": gateway.biller_id, "raw": raw, "decision": decision, "t0": "2026-08-01T00:00:00Z"})
        # The buyer searched by RUT: a handful of orders spread over the account.
        cursor.execute("UPDATE gateways_order SET buyer_rut = %s WHERE account_id = %s AND external_id IN %s",
                       [RUT, gateway.account_id, tuple(str(5100000000 + n) for n in range(start + 7, stop, max(1, (stop - start) // 7)))])


def pages(size: int, folio: int) -> list[tuple[str, str, str]]:
    """(label, path, auth kind) of every page timed."""
    number = size // 2 + 17
    return [
        ("dashboard orders, first page", "/orders/", "session"),
        ("dashboard, status failed", "/orders/?status=failed", "session"),
        ("dashboard, search number", f"/orders/?q=%23{number}", "session"),
        ("dashboard, search RUT", f"/orders/?q={RUT}", "session"),
        ("dashboard, search folio", f"/orders/?q={folio}", "session"),
        ("API orders, first page", "/api/v1/orders/", "key"),
        ("API, status failed", "/api/v1/orders/?status=failed", "key"),
        ("API, search number", f"/api/v1/orders/?q=%23{number}", "key"),
        ("API, search RUT", f"/api/v1/orders/?q={RUT}", "key"),
        ("API, search folio", f"/api/v1/orders/?q={folio}", "key"),
    ]


def timed_get(port: int, path: str, headers: dict) -> tuple[float, int]:
    import http.client

    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    response.read()
    conn.close()
    return (time.perf_counter() - t0) * 1000, response.status


def session_cookie(user) -> str:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def explained_statements(path: str, user, key: str) -> list[tuple[float, str, str]]:
    """Runs the page in this process and EXPLAINs (ANALYZE, BUFFERS) each of its SELECTs, run twice so the
    plans are warm: (planning + execution ms, SQL, plan), slowest first."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    if path.startswith("/api/"):
        headers = {"Authorization": f"Bearer {key}"}
    else:
        client.force_login(user)
        headers = {}
    with CaptureQueriesContext(connection) as queries:
        client.get(path, headers=headers)
    explained = []
    with connection.cursor() as cursor:
        for query in queries.captured_queries:
            sql = query["sql"]
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            for _ in range(2):
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql)
            plan = cursor.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            text = "\n".join(row[0] for row in cursor.fetchall())
            explained.append((plan[0]["Execution Time"] + plan[0]["Planning Time"], sql, text))
    return sorted(explained, reverse=True)


def measure(port: int, size: int, accounts: list, label_suffix: str) -> list[tuple[str, float, float, float]]:
    from gateways.models import Document

    rows = []
    for account, user, _gateway, key in accounts:
        folio = Document.objects.filter(account=account).order_by("-id").values_list("folio", flat=True)[500]
        cookie = session_cookie(user)
        for label, path, auth in pages(size if account is accounts[0][0] else SMALL, folio):
            headers = {"Cookie": cookie} if auth == "session" else {"Authorization": f"Bearer {key}"}
            _, status = timed_get(port, path, headers)
            assert status == 200, (path, status)
            times = sorted(timed_get(port, path, headers)[0] for _ in range(REPEAT))
            p50, p95, worst = times[len(times) // 2], times[int(len(times) * 0.95) - 1], times[-1]
            name = f"{label} ({account.name}{label_suffix})"
            rows.append((name, p50, p95, worst, path, user, key))
            print(f"  {name:<66} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  max {worst:7.1f} ms  "
                  f"{harness.mark(p95, TARGET_MS, False)}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with harness.servers({"shared_buffers": "512MB", "max_wal_size": "4GB"}) as env:
        harness.django_setup(env)
        from django.db import connection

        big = make_account("cuenta grande")
        small = make_account("cuenta chica")
        t0 = time.monotonic()
        fill(small[2], 1, SMALL + 1)
        filled = 0
        port = harness.free_port()
        web = harness.gunicorn(env, port)
        all_rows = []
        try:
            harness.wait_http(port)
            for size in sizes:
                fill(big[2], filled + 1, size + 1)
                filled = size
                with connection.cursor() as cursor:
                    cursor.execute("VACUUM ANALYZE")
                print(f"\n{size:,} orders in '{big[0].name}', {SMALL:,} in '{small[0].name}' "
                      f"(filled in {time.monotonic() - t0:.0f} s); {harness.machine_note()}", flush=True)
                all_rows += measure(port, size, [big, small], f", {size:,}")
        finally:
            web.stop()
        worst = max(all_rows, key=lambda row: row[2])
        missed = [row for row in all_rows if row[2] >= TARGET_MS]
        print(f"\n{len(all_rows) - len(missed)} of {len(all_rows)} pages under {TARGET_MS} ms at p95 "
              f"{harness.mark(-len(missed), 0, True)}; slowest: {worst[0]} p95 {worst[2]:.1f} ms")
        explained = explained_statements(worst[4], worst[5], worst[6])
        print(f"\n{len(explained)} SELECTs on that page, {sum(t for t, _, _ in explained):.1f} ms of planning + execution in all "
              "(the rest of the page's time is Python: middleware, view, template)")
        orders = [row for row in explained if '"gateways_order"' in row[1]]
        for title, (took, sql, plan) in (("slowest", explained[0]), ("slowest on gateways_order", orders[0] if orders else explained[0])):
            print(f"\n{title} ({took:.2f} ms planning + execution):\n{sql[:1500]}\n\n{plan}")


if __name__ == "__main__":
    main()
