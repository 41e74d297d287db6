"""`make demo`'s promise: on the embedded default (SQLite, filesystem broker, no Redis) it serves the
login page, and the worker issues the seeded demo orders' documents within 10 s: one at the built-in
Sandbox, one over HTTP at the LibreDTE simulator the demo starts. The Shopify connect button works
against the Shopify simulator the demo starts too."""
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
import requests

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def shopify_install(base: str) -> str:
    """Signs in as the demo user and installs the app on the Shopify simulator's shop; the page it ends on."""
    session = requests.Session()
    session.get(f"{base}/login/", timeout=10)
    signed_in = session.post(f"{base}/login/", timeout=10, headers={"Referer": f"{base}/login/"}, data={
        "username": "demo@billmysales.local", "password": "demo-billmysales", "csrfmiddlewaretoken": session.cookies["csrftoken"]})
    assert signed_in.ok and "Salir" in signed_in.text
    return session.get(f"{base}/connect/shopify/start/", params={"shop": "demo-cl.myshopify.com"}, timeout=30).text


@pytest.mark.timeout(180)
def test_make_demo_serves_login_and_issues_the_seeded_order(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(BMS_VAR_DIR=str(tmp_path / "var"), BMS_DEMO_PORT=str(port), BMS_DEMO_LIBREDTE_PORT=str(free_port()),
               BMS_DEMO_SHOPIFY_PORT=str(free_port()), BMS_DEMO_MULTIVENDE_PORT=str(free_port()))
    for name in ("BMS_SHOPIFY_CLIENT_ID", "BMS_MULTIVENDE_CLIENT_ID", "BMS_PUBLIC_URL"):
        env.pop(name, None)
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
        connected = shopify_install(f"http://127.0.0.1:{port}")
        assert "Tienda Shopify demo-cl.myshopify.com conectada" in connected, (tmp_path / "demo.log").read_text()
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
