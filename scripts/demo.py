"""`make demo`: migrate, start the LibreDTE, Shopify and Multivende simulators, seed, then run the web
server, a Celery worker and beat until Ctrl-C.

Unless the environment names a real Shopify app or Multivende client, the app settings point at the
simulators, so "Instalar en Shopify" and "Conectar con Multivende" work in the demo (shop
``demo-cl.myshopify.com``; the simulators' consent screens answer at once).

Embedded by default (SQLite under var/, the filesystem broker: no servers to install, no eager mode);
DATABASE_URL / REDIS_URL in the environment switch it to PostgreSQL / Redis.
"""
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
HOST = os.environ.get("BMS_DEMO_HOST", "127.0.0.1")
PORT = os.environ.get("BMS_DEMO_PORT", "8000")
LIBREDTE_PORT = os.environ.get("BMS_DEMO_LIBREDTE_PORT", "8101")
SHOPIFY_PORT = os.environ.get("BMS_DEMO_SHOPIFY_PORT", "8102")
MULTIVENDE_PORT = os.environ.get("BMS_DEMO_MULTIVENDE_PORT", "8103")


def start_simulator(name: str, port: str, env: dict) -> tuple[subprocess.Popen, str]:
    """Starts ``python -m simulators NAME`` and returns it with the URL it printed."""
    proc = subprocess.Popen([PY, "-m", "simulators", name, "--host", HOST, "--port", port], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if " at " not in line:
        proc.kill()
        raise SystemExit(f"demo: the {name} simulator did not start (port {port} busy? set BMS_DEMO_{name.upper()}_PORT)")
    # Keep reading what it prints, so a full pipe never blocks it.
    threading.Thread(target=lambda: [sys.stdout.write(f"{name}: {out}") for out in proc.stdout], daemon=True).start()
    return proc, line.rsplit(" at ", 1)[1].strip()


def simulator_settings(env: dict, *, shopify: str, multivende: str) -> dict:
    """The app settings that send the connect buttons to the simulators (their built-in app credentials),
    unless the environment configures a real Shopify app or Multivende client."""
    values = {"BMS_PUBLIC_URL": env.get("BMS_PUBLIC_URL") or f"http://{HOST}:{PORT}"}
    if not env.get("BMS_SHOPIFY_CLIENT_ID"):
        values.update(BMS_SHOPIFY_CLIENT_ID="sim-shopify-client-id", BMS_SHOPIFY_CLIENT_SECRET="sim-shopify-client-secret",
                      BMS_SHOPIFY_SHOP_URL_TEMPLATE=f"{shopify}/shops/{{shop}}")
    if not env.get("BMS_MULTIVENDE_CLIENT_ID"):
        values.update(BMS_MULTIVENDE_CLIENT_ID="1234", BMS_MULTIVENDE_CLIENT_SECRET="sim-multivende-secret",
                      BMS_MULTIVENDE_BASE_URL=multivende)
    return values


def main() -> int:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "billmysales.settings.local")
    env.setdefault("BMS_SWEEP_INTERVAL", "15")
    env.setdefault("BMS_STUCK_AFTER_SECONDS", "30")
    Path(env.get("BMS_VAR_DIR", ROOT / "var")).mkdir(parents=True, exist_ok=True)
    manage = [PY, str(ROOT / "manage.py")]
    subprocess.run(manage + ["migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    simulators = {}
    try:
        for name, port in (("libredte", LIBREDTE_PORT), ("shopify", SHOPIFY_PORT), ("multivende", MULTIVENDE_PORT)):
            simulators[name] = start_simulator(name, port, env)
        env.update(simulator_settings(env, shopify=simulators["shopify"][1], multivende=simulators["multivende"][1]))
        subprocess.run(manage + ["seed_demo", "--libredte-url", simulators["libredte"][1]], cwd=ROOT, env=env, check=True)
    except (subprocess.CalledProcessError, SystemExit):
        for proc, _url in simulators.values():
            proc.kill()
        raise
    for name, (_proc, url) in simulators.items():
        print(f"demo: {name} simulator at {url}", flush=True)
    broker = "Redis" if env.get("REDIS_URL") else "embedded filesystem broker (var/broker)"
    database = "DATABASE_URL" if env.get("DATABASE_URL") else "SQLite (var/db.sqlite3)"
    print(f"demo: database {database}, broker {broker}", flush=True)
    commands = {
        "web": manage + ["runserver", f"{HOST}:{PORT}", "--noreload"],
        "worker": [PY, "-m", "celery", "-A", "billmysales", "worker", "-Q", "ingest,emit,poll,notify",
                   "-P", "solo", "-l", "info", "-n", "demo@%h"],
        "beat": [PY, "-m", "celery", "-A", "billmysales", "beat", "-l", "info"],
    }
    procs = {f"{name} simulator": proc for name, (proc, _url) in simulators.items()}
    procs.update({name: subprocess.Popen(cmd, cwd=ROOT, env=env) for name, cmd in commands.items()})
    print(f"demo: open http://{HOST}:{PORT}/ — Ctrl-C stops everything", flush=True)
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    while not stopping:
        for name, proc in procs.items():
            if proc.poll() is not None:
                print(f"demo: {name} exited with {proc.returncode}; stopping", flush=True)
                code, stopping = proc.returncode or 1, True
        time.sleep(0.5)
    for proc in procs.values():
        if proc.poll() is None:
            proc.terminate()
    for proc in procs.values():
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return code


if __name__ == "__main__":
    sys.exit(main())
