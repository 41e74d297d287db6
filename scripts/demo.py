"""`make demo`: migrate, start the LibreDTE simulator, seed, then run the web server, a Celery worker and
beat until Ctrl-C.

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


def main() -> int:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "billmysales.settings.local")
    env.setdefault("BMS_SWEEP_INTERVAL", "15")
    env.setdefault("BMS_STUCK_AFTER_SECONDS", "30")
    Path(env.get("BMS_VAR_DIR", ROOT / "var")).mkdir(parents=True, exist_ok=True)
    manage = [PY, str(ROOT / "manage.py")]
    subprocess.run(manage + ["migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    libredte, libredte_url = start_simulator("libredte", LIBREDTE_PORT, env)
    try:
        subprocess.run(manage + ["seed_demo", "--libredte-url", libredte_url], cwd=ROOT, env=env, check=True)
    except subprocess.CalledProcessError:
        libredte.kill()
        raise
    print(f"demo: LibreDTE simulator at {libredte_url}", flush=True)
    broker = "Redis" if env.get("REDIS_URL") else "embedded filesystem broker (var/broker)"
    database = "DATABASE_URL" if env.get("DATABASE_URL") else "SQLite (var/db.sqlite3)"
    print(f"demo: database {database}, broker {broker}", flush=True)
    commands = {
        "web": manage + ["runserver", f"{HOST}:{PORT}", "--noreload"],
        "worker": [PY, "-m", "celery", "-A", "billmysales", "worker", "-Q", "ingest,emit,poll,notify",
                   "-P", "solo", "-l", "info", "-n", "demo@%h"],
        "beat": [PY, "-m", "celery", "-A", "billmysales", "beat", "-l", "info"],
    }
    procs = {"libredte simulator": libredte, **{name: subprocess.Popen(cmd, cwd=ROOT, env=env) for name, cmd in commands.items()}}
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
