"""`make test` promises a real PostgreSQL (>= 15) and a real Redis: these fail, never skip, without them."""
import os
import re
import uuid

import pytest
import redis
from django.conf import settings
from django.db import connection

HINT = "run the suite with `make test` (scripts/testenv.py starts PostgreSQL and Redis)"


@pytest.mark.django_db
def test_database_is_postgresql_15_or_newer():
    assert connection.vendor == "postgresql", f"database is {connection.vendor!r}; {HINT}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        (version,) = cursor.fetchone()
    match = re.match(r"PostgreSQL (\d+)", version)
    assert match, f"unexpected version string {version!r}"
    assert int(match.group(1)) >= 15, f"PostgreSQL 15 or newer needed, got {version!r}"


def test_redis_set_get_round_trip():
    url = os.environ.get("REDIS_URL") or getattr(settings, "REDIS_URL", "")
    assert url, f"REDIS_URL is not set; {HINT}"
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    key = f"bms:test_infra:{uuid.uuid4().hex}"
    try:
        assert client.set(key, "round-trip", ex=60)
        assert client.get(key) == b"round-trip"
    finally:
        client.delete(key)
        client.close()
