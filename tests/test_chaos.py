"""A small round of `make chaos` (scripts/chaos.py): its own PostgreSQL and Redis, gunicorn, two workers, beat
and the LibreDTE simulator, under load while workers and the web server are killed, Redis restarted,
database connections dropped, LibreDTE failing and slow, and duplicate deliveries stormed in."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ALL_FAULTS = {"kill_worker", "kill_web", "restart_redis", "drop_db", "biller_errors", "biller_slow", "storm"}


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_a_short_chaos_round_issues_every_accepted_order_once():
    env = {key: value for key, value in os.environ.items() if key not in ("CHAOS_KEEP", "PROMETHEUS_MULTIPROC_DIR")}
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "chaos.py"), "--seconds", "20", "--rate", "3", "--settle", "60"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=140,
    )

    lines = [line for line in run.stdout.splitlines() if line.startswith("chaos-result: ")]
    assert lines, f"no result (exit {run.returncode}):\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    result = json.loads(lines[-1].removeprefix("chaos-result: "))
    assert run.returncode == 0, run.stdout[-4000:]
    assert (result["duplicates"], result["lost"], result["held_without_reason"]) == (0, 0, 0)
    assert result["accepted"] >= 40 and result["issued"] + result["held"] + result["failed"] == result["accepted"]
    assert result["issued"] == result["documents"] and result["issued_without_exactly_one_document"] == 0
    assert set(result["faults"]) == ALL_FAULTS
    assert result["restarts"]["web"] >= 1 and sum(n for name, n in result["restarts"].items() if name.startswith("worker")) >= 1
    assert result["deliveries"]["duplicates_sent"] > 0
    # Every process's counters reach /metrics, the killed workers' too.
    assert result["metrics"]["bms_documents_issued_total{all}"] >= result["issued"] - 1
