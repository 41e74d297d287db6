"""Production refuses to start without its secrets, database and broker, or with DEBUG on;
docker-compose.yml describes the documented stack."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPLETE = {
    "SECRET_KEY": "x" * 50,
    "FIELD_ENCRYPTION_KEYS": "dGVzdC1rZXktb25lLW5vdC1mb3ItcHJvZHVjdGlvbjE=",
    "DATABASE_URL": "postgres://bms:bms@127.0.0.1:5432/bms",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
}


def start_production(**overrides) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in COMPLETE and k != "DEBUG"}
    env.update(DJANGO_SETTINGS_MODULE="billmysales.settings.production", BMS_VAR_DIR="/tmp/bms-settings-test")
    env.update({k: v for k, v in {**COMPLETE, **overrides}.items() if v is not None})
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )


def test_production_starts_with_everything_set():
    result = start_production()
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


@pytest.mark.parametrize("missing", sorted(COMPLETE))
def test_production_refuses_to_start_without(missing):
    result = start_production(**{missing: None})
    assert result.returncode != 0
    assert f"Production settings need these environment variables: {missing}" in result.stderr


def test_production_refuses_debug():
    result = start_production(DEBUG="true")
    assert result.returncode != 0
    assert "DEBUG must be off in production" in result.stderr


def test_compose_runs_the_documented_stack_from_one_image():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "web", "worker", "beat"}
    assert services["postgres"]["image"].startswith("postgres:15")
    assert services["redis"]["image"].startswith("redis:7")
    images = {services[name].get("image") for name in ("web", "worker", "beat")}
    assert len(images) == 1 and None not in images
    for name in ("web", "worker", "beat"):
        assert services[name]["environment"]["DJANGO_SETTINGS_MODULE"] == "billmysales.settings.production"
    assert "gunicorn" in str(services["web"]["command"])
    assert "ingest,emit,poll,notify" in str(services["worker"]["command"])
    example = (ROOT / ".env.example").read_text()
    for variable in ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "ALLOWED_HOSTS"):
        assert variable in example
