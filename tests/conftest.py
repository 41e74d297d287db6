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
from django.utils import translation  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from accounts.models import Role  # noqa: E402
from accounts.services import Actor, api_key_create  # noqa: E402
from tests.accounts.factories import AccountFactory, MembershipFactory, UserFactory  # noqa: E402


@pytest.fixture(autouse=True)
def _default_language_after_each_test():
    """A request in English (Accept-Language or the language cookie) leaves English active in the thread:
    LocaleMiddleware activates a language and never deactivates it. Each test ends back in the default."""
    yield
    translation.deactivate()


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
    return Actor(user=user, role=Role.OWNER)


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


def worker_env(**extra) -> dict:
    """Environment for a Celery worker process that uses the test database and Redis."""
    import os

    from django.conf import settings as dj_settings
    from django.db import connection

    db = dj_settings.DATABASES["default"]
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="billmysales.settings.test",
        DATABASE_URL=f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST']}:{db['PORT']}/{connection.settings_dict['NAME']}",
        **{key: str(value) for key, value in extra.items()},
    )
    return env


class WorkerProcess:
    """A real Celery worker in its own process (prefork pool), on the test database and Redis."""

    def __init__(self, name: str = "w1", concurrency: int = 2, **env):
        self.name, self.concurrency, self.extra_env = name, concurrency, env
        self.proc = None
        self.log_path = None

    def start(self, timeout: float = 30.0) -> "WorkerProcess":
        import subprocess
        import sys
        import tempfile
        import time
        from pathlib import Path

        self.log_path = Path(tempfile.mkstemp(prefix=f"worker-{self.name}-", suffix=".log")[1])
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "billmysales", "worker", "-Q", "ingest,emit,poll,notify",
             "-P", "prefork", "-c", str(self.concurrency), "-n", f"{self.name}@%h", "-l", "info", "--without-gossip",
             "--without-mingle", "--without-heartbeat"],
            env=worker_env(**self.extra_env), stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parent.parent, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "ready." in self.log():
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited:\n{self.log()}")
            time.sleep(0.2)
        raise RuntimeError(f"worker {self.name} not ready in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children), as a crash would."""
        import os
        import signal

        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        import os
        import signal
        import subprocess

        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.log_path:
            self.log_path.unlink(missing_ok=True)


@pytest.fixture
def celery_worker_process(transactional_db):
    """Starts workers on demand (``start(name=..., **env)``) and stops them all after the test."""
    workers = []

    def start(**kwargs) -> WorkerProcess:
        worker = WorkerProcess(**kwargs).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def purge_broker():
    """Empties the Redis broker's queues so one test's leftover messages never reach the next."""
    import redis
    from django.conf import settings as dj_settings

    client = redis.Redis.from_url(dj_settings.REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
