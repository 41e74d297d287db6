"""`make demo`'s promise: on the embedded default (SQLite, filesystem broker, no Redis) it serves the
login page, and the worker issues the seeded demo orders' documents within 10 s: one at the built-in
Sandbox, one over HTTP at the LibreDTE simulator the demo starts."""
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.timeout(180)
def test_make_demo_serves_login_and_issues_the_seeded_order(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(BMS_VAR_DIR=str(tmp_path / "var"), BMS_DEMO_PORT=str(port), BMS_DEMO_LIBREDTE_PORT=str(free_port()))
    log = (tmp_path / "demo.log").open("wb")
    proc = subprocess.Popen([sys.executable, "scripts/demo.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        page = None
        while time.monotonic() < deadline and page is None:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=2).read().decode()
            except OSError:
                assert proc.poll() is None, (tmp_path / "demo.log").read_text()
                time.sleep(0.3)
        assert page and "Ingresar" in page, (tmp_path / "demo.log").read_text()
        served_at = time.monotonic()

        db = sqlite3.connect(tmp_path / "var" / "db.sqlite3", timeout=10)
        query = ("SELECT b.provider, d.tipo_dte, d.folio, d.mnt_total, o.paid_total FROM gateways_document d "
                 "JOIN gateways_order o ON o.id = d.order_id JOIN billers_billerconnection b ON b.id = d.biller_id ORDER BY b.provider")
        rows = []
        while time.monotonic() - served_at < 10 and len(rows) < 2:
            rows = db.execute(query).fetchall()
            time.sleep(0.2)
        assert [row[:3] for row in rows] == [("libredte", 39, 1), ("sandbox", 39, 1)], (tmp_path / "demo.log").read_text()
        assert all(row[3] == int(float(row[4])) for row in rows)
        output = (tmp_path / "demo.log").read_text()
        assert "demo@billmysales.local" in output and "embedded filesystem broker" in output
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    assert proc.returncode == 0
