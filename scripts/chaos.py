"""`make chaos`: the whole stack under load while it is being broken, then a count of what came out.

What runs (all on loopback, thrown away at the end): a PostgreSQL and a Redis of its own (started with
``scripts/testenv.py``'s helpers), the web app under gunicorn, ``CHAOS_WORKERS`` Celery workers (a threads
pool as in docker-compose.yml, ``CHAOS_POOL``/``CHAOS_CONCURRENCY`` to change), Celery beat running the
sweeper every 2 s, and the LibreDTE simulator (in this
process, so the documents LibreDTE issued can be counted per reference at the end). A Demo store
gateway → LibreDTE is seeded; the load sends signed Demo-store webhooks (paid CLP orders) at
``CHAOS_RATE`` orders per second and, like a store, re-sends a delivery until it gets a 2xx.

What breaks, in turn, during ``CHAOS_SECONDS`` (every kind at least once):
  kill_worker     SIGKILL a worker and its pool (a crashed container), restarted a second later
  kill_web        SIGKILL gunicorn: deliveries fail until it is back (the store re-sends)
  restart_redis   Redis shut down without saving (every queued message is lost) and started again
  drop_db         pg_terminate_backend() on every application connection
  biller_errors   LibreDTE answers 503 to 30 % of calls and drops the answer of 15 % of generar calls
                  after issuing (the outcome is unknown to us) for a few seconds
  biller_slow     LibreDTE answers 1.5 s late for a few seconds
  storm           a burst of duplicate deliveries of accepted orders: same delivery id, and new ids
A supervisor restarts whatever exits, as docker compose's ``restart: unless-stopped`` would. With
kombu 5.7.0 a worker that holds an unacknowledged task when Redis goes away exits by itself: those exits
are counted apart ("exited by themselves") and restarted the same way.

Then the load stops, the faults are cleared and it waits (at most ``CHAOS_SETTLE_SECONDS``) until every
accepted order is settled. The check: every order the store got a 2xx for is issued with exactly one
document here and exactly one at LibreDTE for its reference, or held / failed with its reason shown;
``duplicates`` counts documents beyond the first per order at LibreDTE, ``lost`` accepted orders that
are missing or still not settled. Exit status 1 on any duplicate or lost order (or a hold without a
reason), 2 when the stack could not be set up. The last line is ``chaos-result: {json}``.

Knobs (environment or flags): CHAOS_SECONDS (180, --seconds), CHAOS_RATE (5 orders/s, --rate),
CHAOS_WORKERS (2), CHAOS_POOL (threads; or prefork), CHAOS_CONCURRENCY (16), CHAOS_SETTLE_SECONDS (240),
CHAOS_SEED (random), CHAOS_KEEP=1 keeps the temporary directory with every process's log (kept anyway
when the check fails).
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import testenv  # noqa: E402

PY = sys.executable
FAULT_KINDS = ("kill_worker", "biller_errors", "storm", "restart_redis", "drop_db", "biller_slow", "kill_web", "kill_worker")
RESTART_DELAY = 1.0
FINAL_STATUSES = ("issued", "held", "failed", "skipped")
LEASE_SECONDS = 12


def say(message: str) -> None:
    print(f"chaos: {message}", flush=True)


# --- processes --------------------------------------------------------------------------------------------


class Managed:
    """A process in its own process group, logging to a file, restarted by the supervisor when it exits."""

    def __init__(self, name: str, cmd: list[str], env: dict, log_dir: Path):
        self.name, self.cmd, self.env = name, cmd, env
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.down_since: float | None = None
        self.killed = False
        self.starts = 0
        self.self_exits = 0

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.starts += 1
        self.down_since, self.killed = None, False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.proc.pid, signum)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL the whole group, as a crash of its container would."""
        if self.alive():
            self.killed = True
            self.signal_group(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.alive():
            self.signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.signal_group(signal.SIGKILL)  # leftover pool children

    def supervise(self, now: float) -> None:
        if self.alive():
            return
        if self.down_since is None:
            self.down_since = now
            if not self.killed:
                self.self_exits += 1
                say(f"{self.name} exited by itself (code {self.proc.returncode}); restarting")
        elif now - self.down_since >= RESTART_DELAY:
            self.start()


class RestartableRedis(testenv.Redis):
    """testenv's Redis, restarted on the same port (the workers' broker URL does not change)."""

    def restart(self, down_seconds: float) -> None:
        import redis

        try:
            redis.Redis(port=self.port, socket_timeout=2).shutdown(nosave=True)
        except redis.exceptions.ConnectionError:
            pass  # the server closes the connection as it goes
        self.proc.wait(timeout=10)
        time.sleep(down_seconds)
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", testenv.HOST, "--dir", str(self.dir), "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--logfile", str(self.logfile), "--maxclients", "1000"],
            cwd=self.dir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if testenv.redis_command(self.port, "PING").startswith(b"+PONG"):
                    return
            except OSError:
                time.sleep(0.05)
        raise testenv.TestEnvError(f"redis-server did not come back:\n{testenv.tail(self.logfile)}")


# --- the store: deliveries until acknowledged -------------------------------------------------------------


class Store:
    """Sends signed Demo-store deliveries; a delivery not answered 2xx is sent again, as stores do."""

    def __init__(self, url: str, secret: str, threads: int = 8):
        from sources.demo.adapter import DemoSource
        from sources.demo.webhooks import DELIVERY_HEADER, SIGNATURE_HEADER, TOPIC_HEADER, DemoWebhookReader

        self.url, self.secret = url, secret
        self.sample, self.sign = DemoSource.sample_order, DemoWebhookReader.sign
        self.headers = (DELIVERY_HEADER, SIGNATURE_HEADER, TOPIC_HEADER)
        self.jobs: queue.Queue = queue.Queue()
        self.lock = threading.Lock()
        self.accepted: set[str] = set()
        self.bodies: dict[str, bytes] = {}
        self.counts: Counter = Counter()
        self.unacknowledged = 0
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True, name=f"store-{n}") for n in range(threads)]
        for thread in self.threads:
            thread.start()

    def new_order(self, number: int) -> None:
        payload = self.sample(number=number)
        external_id = str(payload["id"])
        body = json.dumps(payload).encode()
        with self.lock:
            self.bodies[external_id] = body
            self.unacknowledged += 1
            self.counts["orders"] += 1
        self.jobs.put((external_id, f"first-{external_id}", True))

    def storm(self, size: int, rng: random.Random) -> int:
        """Re-sends accepted orders: half under their first delivery id, half under a new one."""
        with self.lock:
            accepted = sorted(self.accepted)
        picked = rng.sample(accepted, min(size, len(accepted)))
        for n, external_id in enumerate(picked):
            delivery = f"first-{external_id}" if n % 2 else f"again-{external_id}-{rng.randrange(10**9)}"
            self.jobs.put((external_id, delivery, False))
        with self.lock:
            self.counts["duplicates_sent"] += len(picked)
        return len(picked)

    def _run(self) -> None:
        import requests

        session = requests.Session()
        delivery_header, signature_header, topic_header = self.headers
        while not self.stopping.is_set():
            try:
                external_id, delivery_id, first = self.jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            body = self.bodies[external_id]
            headers = {"Content-Type": "application/json", delivery_header: delivery_id, topic_header: "orders/paid",
                       signature_header: self.sign(body, self.secret)}
            try:
                status = session.post(self.url, data=body, headers=headers, timeout=10).status_code
            except requests.RequestException:
                status = 0
            with self.lock:
                self.counts["posts"] += 1
                if 200 <= status < 300:
                    if first and external_id not in self.accepted:
                        self.unacknowledged -= 1
                    self.accepted.add(external_id)
                else:
                    self.counts["refused_or_failed_posts"] += 1
            if not 200 <= status < 300 and first:
                time.sleep(0.5)  # then the store tries again
                self.jobs.put((external_id, delivery_id, True))

    def drained(self) -> bool:
        with self.lock:
            return self.unacknowledged == 0 and self.jobs.empty()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=15)


# --- the run ----------------------------------------------------------------------------------------------


def child_env(pg_url: str, redis_url: str, base: Path) -> dict:
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "billmysales.settings.local",
        "DEBUG": "False",
        "DATABASE_URL": pg_url,
        "REDIS_URL": redis_url,
        "BMS_VAR_DIR": str(base / "var"),
        "LOG_FORMAT": "json",
        "PROMETHEUS_MULTIPROC_DIR": str(base / "metrics"),
        "BMS_SWEEP_INTERVAL": "2",
        "BMS_STUCK_AFTER_SECONDS": "6",
        "BMS_POLL_TICK_SECONDS": "3600",
        "BMS_SII_STATUS_TICK_SECONDS": "3600",
        # Short limits so a killed attempt is reconciled within the run: the lease outlives the hard limit.
        "CELERY_TASK_TIME_LIMIT": str(LEASE_SECONDS - 2),
        "CELERY_TASK_SOFT_TIME_LIMIT": str(LEASE_SECONDS - 4),
        "BMS_EMISSION_LEASE_SECONDS": str(LEASE_SECONDS),
        "BMS_RETRY_DELAYS": ",".join(["1", "1", "2", "2", "3"] + ["5"] * 25),
    })
    for name in ("CELERY_BROKER_URL", "BMS_METRICS_TOKEN"):
        env.pop(name, None)
    return env


def seed(sim_url: str) -> tuple[object, str]:
    from accounts.models import User
    from accounts.services import Actor, account_create
    from billers.models import Environment
    from billers.services import biller_connection_create
    from gateways.services import gateway_activate, gateway_create
    from simulators.libredte import DEFAULT_HASH
    from sources.services import source_connection_create

    user = User.objects.create_user("caos@billmysales.local", "chaos-not-a-login", full_name="Prueba de caos")
    account = account_create(name="Caos SpA", owner=user, rut="76192083-9")
    actor = Actor(user=user, role="owner")
    secret = "chaos-webhook-secret"
    source = source_connection_create(account=account, actor=actor, name="Tienda Demo (caos)", platform="demo",
                                      credentials={"webhook_secret": secret})
    biller = biller_connection_create(
        account=account, actor=actor, name="LibreDTE (simulador)", provider="libredte", environment=Environment.CERTIFICATION,
        emisor_rut="76192083-9", emisor_razon_social="Empresa Demo SpA", emisor_giro="Venta al por menor por internet",
        emisor_acteco=479100, emisor_address="Av. Libertador Bernardo O'Higgins 1449", emisor_comuna="Santiago",
        credentials={"api_hash": DEFAULT_HASH}, config={"base_url": sim_url},
    )
    gateway = gateway_create(account=account, name="Caos → LibreDTE", source=source, biller=biller, actor=actor)
    gateway_activate(gateway=gateway, actor=actor, reason="Prueba de caos")
    return gateway, secret


def wait_until(predicate, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise testenv.TestEnvError(f"{what} not within {timeout:.0f}s")


def http_ok(url: str) -> bool:
    import requests

    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def drop_db_connections() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        return cursor.fetchone()[0]


class Chaos:
    def __init__(self, args, base: Path, pg, redis: RestartableRedis):
        self.args, self.base, self.pg, self.redis = args, base, pg, redis
        self.rng = random.Random(args.seed)
        self.faults: Counter = Counter()
        self.procs: dict[str, Managed] = {}
        self.sim = None
        self.django_ready = False

    def start_stack(self) -> None:
        env = child_env(self.pg.url, self.redis.url, self.base)
        # Dispatch rounds size their batches for the ingest threads actually running (gateways.dispatch).
        env["BMS_INGEST_CONCURRENCY"] = str(self.args.workers * self.args.concurrency)
        (self.base / "metrics").mkdir()
        (self.base / "var").mkdir()
        # This process seeds, runs the LibreDTE simulator and checks the database: same settings, quieter logs.
        os.environ.update(env, LOG_FORMAT="text", LOG_LEVEL="WARNING")
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR")
        subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env={**env, "LOG_LEVEL": "WARNING"},
                       check=True, stdout=subprocess.DEVNULL)
        import django

        django.setup()
        self.django_ready = True
        from simulators.libredte import LibreDTESimulator

        # Schema checks off: the DTE core's XML is validated by its own tests; here it would only burn CPU.
        self.sim = LibreDTESimulator(port=testenv.free_port(), validate_schema=False).start()
        # A killed worker cuts its connections: http.server would print a ConnectionResetError traceback for each.
        self.sim._server.handle_error = lambda request, client_address: None
        self.gateway, secret = seed(self.sim.url)
        port = testenv.free_port()
        self.web_url = f"http://{testenv.HOST}:{port}"
        logs = self.base / "logs"
        logs.mkdir()
        self.procs["web"] = Managed("web", [PY, "-m", "gunicorn", "billmysales.wsgi:application", "-b", f"{testenv.HOST}:{port}",
                                            "--workers", "2", "--timeout", "30"], env, logs)
        for n in range(1, self.args.workers + 1):
            self.procs[f"worker{n}"] = Managed(
                f"worker{n}", [PY, "-m", "celery", "-A", "billmysales", "worker", "-Q", "ingest,emit,poll,notify",
                               "-P", self.args.pool, "-c", str(self.args.concurrency), "-n", f"chaos{n}@%h", "-l", "info",
                               "--without-gossip", "--without-mingle", "--without-heartbeat"], env, logs)
        self.procs["beat"] = Managed("beat", [PY, "-m", "celery", "-A", "billmysales", "beat", "-l", "info",
                                              "-s", str(self.base / "var" / "beat-schedule")], env, logs)
        for proc in self.procs.values():
            proc.start()
        wait_until(lambda: http_ok(f"{self.web_url}/readyz"), 60, "the web server")
        for name, proc in self.procs.items():
            if name.startswith("worker"):
                wait_until(lambda p=proc: "ready." in p.log_path.read_text(errors="replace"), 90, f"{name}")
        self.store = Store(f"{self.web_url}/hooks/{self.gateway.webhook_token}/", secret)

    def supervise(self) -> None:
        now = time.monotonic()
        for proc in self.procs.values():
            proc.supervise(now)

    # --- faults ---

    def inject(self, kind: str) -> str:
        self.faults[kind] += 1
        if kind == "kill_worker":
            workers = [p for name, p in self.procs.items() if name.startswith("worker") and p.alive()]
            if not workers:
                return "no worker alive"
            victim = self.rng.choice(workers)
            victim.kill()
            return victim.name
        if kind == "kill_web":
            self.procs["web"].kill()
            return "gunicorn"
        if kind == "restart_redis":
            self.redis.restart(down_seconds=1.5)
            return f"port {self.redis.port}"
        if kind == "drop_db":
            return f"{drop_db_connections()} connections"
        if kind == "biller_errors":
            self.sim.faults.replace([{"route": "*", "kind": "status", "status": 503, "rate": 0.3},
                                     {"route": "generar", "kind": "lost_answer", "rate": 0.15}])
            return "503 on 30 %, lost answers on 15 % of generar"
        if kind == "biller_slow":
            self.sim.faults.replace([{"route": "*", "kind": "delay", "delay_ms": 1500}])
            return "+1.5 s"
        if kind == "storm":
            return f"{self.store.storm(100, self.rng)} duplicate deliveries"
        raise ValueError(kind)

    def run_load(self) -> float:
        """Orders at the chosen rate with a fault every ``interval``; returns the seconds it took."""
        seconds, rate = self.args.seconds, self.args.rate
        interval = min(8.0, seconds / len(FAULT_KINDS))
        started = time.monotonic()
        next_order, next_fault, clear_biller_at = started, started + interval / 2, None
        number, kinds = 100_000, list(FAULT_KINDS)
        # Until the time is up and every kind of fault has happened at least once.
        while (now := time.monotonic()) < started + seconds or kinds:
            while next_order <= now:
                self.store.new_order(number)
                number += 1
                next_order += 1 / rate
            if clear_biller_at is not None and now >= clear_biller_at:
                self.sim.faults.clear()
                clear_biller_at = None
            if now >= next_fault:
                kind = kinds.pop(0) if kinds else self.rng.choice(FAULT_KINDS)
                say(f"t={now - started:5.1f}s {kind}: {self.inject(kind)}")
                if kind in ("biller_errors", "biller_slow"):
                    clear_biller_at = now + min(6.0, interval * 0.75)
                next_fault = now + interval
            self.supervise()
            time.sleep(0.02)
        self.sim.faults.clear()
        return time.monotonic() - started

    # --- settling and the check ---

    def unsettled(self) -> int:
        from gateways.models import Emission, EmissionStatus, InboundEvent, Order

        with self.store.lock:
            accepted = set(self.store.accepted)
        settled = set(Order.objects.filter(gateway=self.gateway, external_id__in=accepted, status__in=FINAL_STATUSES)
                      .values_list("external_id", flat=True))
        busy = (Emission.objects.filter(order__gateway=self.gateway, status__in=[EmissionStatus.PENDING, EmissionStatus.ISSUING])
                .count() + InboundEvent.objects.filter(gateway=self.gateway, status=InboundEvent.Status.PENDING).count())
        return len(accepted - settled) + busy

    def settle(self) -> float:
        started = time.monotonic()
        deadline = started + self.args.settle
        while time.monotonic() < deadline:
            self.supervise()
            if self.store.drained() and not self.unsettled():
                break
            time.sleep(0.5)
        return time.monotonic() - started

    def check(self) -> dict:
        from billers.libredte.adapter import reference_of
        from gateways.models import Document, DocumentKind, Emission, Order

        with self.store.lock:
            accepted = set(self.store.accepted)
        orders = {o.external_id: o for o in Order.objects.filter(gateway=self.gateway)}
        emissions = {e.order_id: e for e in Emission.objects.filter(order__gateway=self.gateway, kind=DocumentKind.INVOICE)}
        documents = Counter(Document.objects.filter(order__gateway=self.gateway, kind=DocumentKind.INVOICE)
                            .values_list("order_id", flat=True))
        with self.sim.lock:
            at_libredte = Counter(reference_of({"extra": doc.extra}) for doc in self.sim.issued.values())
        ours = {e.reference for e in emissions.values()}
        status = Counter()
        lost, held_without_reason, issued_without_one_document = [], [], []
        held_but_issued_at_biller = 0
        held_reasons: Counter = Counter()
        for external_id in sorted(accepted):
            order = orders.get(external_id)
            if order is None or order.status not in FINAL_STATUSES:
                lost.append(external_id)
                continue
            status[order.status] += 1
            emission = emissions.get(order.pk)
            if order.status == "issued":
                if documents[order.pk] != 1 or emission is None or at_libredte[emission.reference] != 1:
                    issued_without_one_document.append(external_id)
            elif not order.status_reason:
                held_without_reason.append(external_id)
            elif emission is not None and at_libredte[emission.reference]:
                held_but_issued_at_biller += 1
            if order.status != "issued" and order.status_reason:
                # Counted by reason: the order's own reference in the text would make each one unique.
                reason = order.status_reason.replace(emission.reference, "<ref>") if emission is not None else order.status_reason
                held_reasons[reason[:160]] += 1
        duplicates = sum(n - 1 for ref, n in at_libredte.items() if n > 1)
        duplicates += sum(n - 1 for n in documents.values() if n > 1)
        strangers = sum(n for ref, n in at_libredte.items() if ref not in ours)
        metrics = self.scrape_metrics()
        return {
            "accepted": len(accepted), "issued": status["issued"], "held": status["held"], "failed": status["failed"],
            "skipped": status["skipped"], "duplicates": duplicates, "lost": len(lost),
            "issued_without_exactly_one_document": len(issued_without_one_document),
            "held_without_reason": len(held_without_reason), "held_but_issued_at_biller": held_but_issued_at_biller,
            "documents_at_libredte_without_our_reference": strangers, "documents": sum(documents.values()),
            "deliveries": dict(self.store.counts), "faults": dict(self.faults),
            "restarts": {name: p.starts - 1 for name, p in self.procs.items()},
            "exited_by_themselves": {name: p.self_exits for name, p in self.procs.items() if p.self_exits},
            "metrics": metrics, "examples": {"lost": lost[:5], "issued_wrong": issued_without_one_document[:5]},
            "reasons_not_issued": dict(held_reasons.most_common(5)),
        }

    def scrape_metrics(self) -> dict:
        """A few totals from /metrics (every process's counters, killed ones included)."""
        import requests
        from prometheus_client.parser import text_string_to_metric_families

        try:
            text = requests.get(f"{self.web_url}/metrics", timeout=10).text
        except requests.RequestException as exc:
            return {"error": str(exc)}
        wanted = {"bms_documents_issued_total", "bms_emission_attempts_total", "bms_inbound_deliveries_total"}
        totals: Counter = Counter()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in wanted:
                    label = sample.labels.get("outcome") or sample.labels.get("result") or "all"
                    totals[f"{sample.name}{{{label}}}"] += sample.value
        return {key: int(value) for key, value in sorted(totals.items())}

    def stop(self) -> None:
        store = getattr(self, "store", None)
        if store is not None:
            store.stop()
        for proc in self.procs.values():
            proc.stop()
        if self.sim is not None:
            self.sim.stop()


def parse_args(argv: list[str]):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("CHAOS_SECONDS", 180)))
    parser.add_argument("--rate", type=float, default=float(os.environ.get("CHAOS_RATE", 5)))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("CHAOS_WORKERS", 2)))
    # As docker-compose.yml runs them: a threads pool (there 64 threads a process; fewer here, one small box).
    parser.add_argument("--pool", choices=("threads", "prefork"), default=os.environ.get("CHAOS_POOL", "threads"))
    parser.add_argument("--concurrency", type=int, default=int(os.environ.get("CHAOS_CONCURRENCY", 16)))
    parser.add_argument("--settle", type=float, default=float(os.environ.get("CHAOS_SETTLE_SECONDS", 240)))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("CHAOS_SEED", random.randrange(10**6))))
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    t0 = time.monotonic()
    as_root = os.geteuid() == 0
    base = testenv.make_base_dir(as_root)
    pg = redis = chaos = None
    keep = os.environ.get("CHAOS_KEEP") == "1"
    code = 2

    def on_term(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        pg = testenv.Postgres(testenv.find_pg_bindir(), base, as_root)
        pg.prepare()
        pg.start()
        redis = RestartableRedis(testenv.find_redis_server(), base)
        redis.start()
        say(f"{args.seconds:.0f}s at {args.rate:g} orders/s, {args.workers} workers ({args.pool} × {args.concurrency}), seed {args.seed}; "
            f"PostgreSQL {pg.version}, Redis {redis.version}, logs in {base / 'logs'}")
        chaos = Chaos(args, base, pg, redis)
        chaos.start_stack()
        ready = time.monotonic() - t0
        say(f"stack ready in {ready:.1f}s; load and faults start")
        loaded = chaos.run_load()
        say(f"load stopped after {loaded:.1f}s; faults cleared, waiting for every accepted order to settle")
        settled = chaos.settle()
        result = chaos.check()
        result.update(elapsed_seconds=round(time.monotonic() - t0, 1), setup_seconds=round(ready, 1),
                      load_seconds=round(loaded, 1), settle_seconds=round(settled, 1), rate=args.rate, seed=args.seed,
                      workers=args.workers, pool=f"{args.pool} x {args.concurrency}")
        failed = result["duplicates"] or result["lost"] or result["held_without_reason"] or result["issued_without_exactly_one_document"]
        code = 1 if failed else 0
        say(f"accepted={result['accepted']} issued={result['issued']} held={result['held']} failed={result['failed']} "
            f"duplicates={result['duplicates']} lost={result['lost']} elapsed={result['elapsed_seconds']}s "
            f"(setup {ready:.0f}s, load {loaded:.0f}s, settle {settled:.0f}s)")
        say(f"faults: {result['faults']}; restarts: {result['restarts']}; exited by themselves: {result['exited_by_themselves']}")
        say(f"deliveries: {result['deliveries']}; metrics: {result['metrics']}")
        for reason, count in result["reasons_not_issued"].items():
            say(f"not issued ({count}): {reason}")
        say("PASSED: no duplicate and no lost order" if not failed else f"FAILED; logs kept in {base / 'logs'}")
        print("chaos-result: " + json.dumps(result, sort_keys=True), flush=True)
        keep = keep or bool(failed)
        return code
    except (testenv.TestEnvError, subprocess.CalledProcessError) as exc:
        say(f"setup failed: {exc}; logs kept in {base}")
        keep = True
        return 2
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if chaos is not None:
            chaos.stop()
        if redis is not None:
            redis.stop()
        if pg is not None:
            if chaos is not None and chaos.django_ready:
                from django.db import connections

                connections.close_all()
            pg.stop()
        if keep:
            say(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
