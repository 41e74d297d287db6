# ==== testenv report header (infra; keep this block self-contained, add fixtures BELOW it) ====
# Says which database and broker the run used, e.g.
#   database: postgresql at 127.0.0.1:41234/bms_test
#   redis: redis://127.0.0.1:39876/0 (celery broker: same)
# as part of pytest's header, or at session start under -q (which hides the header).
# DATABASE_URL / REDIS_URL come from `make test` (scripts/testenv.py). Do not define a second
# pytest_report_header or pytest_sessionstart in this file: it would replace these.
def _testenv_header_lines():
    import os

    def redact(url):
        from urllib.parse import urlsplit

        password = urlsplit(url).password
        return url.replace(f":{password}@", ":***@", 1) if password else url

    try:
        from django.conf import settings
        from django.db import connections

        db = settings.DATABASES["default"]
        vendor = connections["default"].vendor  # loads the backend; does not connect
        where = f"{db.get('HOST') or 'local'}:{db.get('PORT') or 'default'}/{db.get('NAME')}"
        redis_url = getattr(settings, "REDIS_URL", "") or os.environ.get("REDIS_URL", "")
        broker = str(getattr(settings, "CELERY_BROKER_URL", ""))
    except Exception as exc:  # the header must never break the run
        return [f"database: unknown ({exc.__class__.__name__}: {exc})",
                f"redis: {redact(os.environ.get('REDIS_URL', '')) or 'not set'}"]
    broker_note = "same" if broker == redis_url else redact(broker)
    return [f"database: {vendor} at {where}",
            f"redis: {redact(redis_url) or 'not set'} (celery broker: {broker_note})"]


def pytest_report_header(config):
    return _testenv_header_lines()


def pytest_sessionstart(session):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and session.config.get_verbosity() < 0:
        for line in _testenv_header_lines():
            reporter.write_line(line)
# ==== end of testenv report header ====

import pytest  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from accounts.models import Role  # noqa: E402
from accounts.services import Actor, api_key_create  # noqa: E402
from tests.accounts.factories import AccountFactory, MembershipFactory, UserFactory  # noqa: E402


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def account(user):
    account = AccountFactory(name="Comercial Los Andes SpA")
    MembershipFactory(user=user, account=account, role=Role.OWNER)
    return account


@pytest.fixture
def other_account(db):
    other = AccountFactory(name="Otra Tienda Ltda")
    MembershipFactory(account=other, role=Role.OWNER)
    return other


@pytest.fixture
def actor(user):
    return Actor(user=user)


@pytest.fixture
def session_client(user, account, client):
    client.force_login(user)
    return client


@pytest.fixture
def api_client(user, account):
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def write_key_client(account, actor):
    _, raw = api_key_create(account=account, name="integración", scope="write", actor=actor)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client
