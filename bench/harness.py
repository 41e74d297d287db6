"""What every benchmark needs: throwaway PostgreSQL and Redis, the product's processes, CPU accounting,
a load generator and a note of what else was running on the machine.

Each ``bench/*.py`` is one command that starts what it needs here, measures, prints its figures and
stops everything it started (also on Ctrl-C). Loopback only; every loop is bounded in time.

Settings: ``bench.settings`` (the production settings with the secrets a bench needs and a plain
static storage), so web and workers run as they would in production (DEBUG off, persistent
connections, the same middleware).
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import testenv  # noqa: E402  (standard library only)

PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
BENCH_ENV = {
    "DJANGO_SETTINGS_MODULE": "bench.settings",
    "SECRET_KEY": "bench-secret-key-not-for-production-0123456789",
    "FIELD_ENCRYPTION_KEYS": "YmVuY2gta2V5LW5vdC1mb3ItcHJvZHVjdGlvbi0wMDE=",
    "SECURE_SSL_REDIRECT": "false",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "LOG_LEVEL": "WARNING",
    "BMS_INSECURE_HOSTS": "127.0.0.1,localhost",
    "EMAIL_BACKEND": "bench.settings.SerialisingEmailBackend",
    "PYTHONPATH": str(ROOT),
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- servers -------------------------------------------------------------------------------------


@contextlib.contextmanager
def servers(pg_settings: dict | None = None) -> Iterator[dict]:
    """A throwaway PostgreSQL (testenv's settings: fsync off) and Redis; yields the environment to use.
    With DATABASE_URL and REDIS_URL already set, those are used and nothing starts."""
    env = dict(os.environ, **BENCH_ENV)
    if os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"):
        yield env
        return
    as_root = os.geteuid() == 0
    base = testenv.make_base_dir(as_root)
    saved = dict(testenv.PG_SETTINGS)
    testenv.PG_SETTINGS.update(pg_settings or {})
    pg = testenv.Postgres(testenv.find_pg_bindir(), base, as_root)
    redis = testenv.Redis(testenv.find_redis_server(), base)
    try:
        pg.prepare()
        pg.start()
        redis.start()
        env.update(DATABASE_URL=pg.url, REDIS_URL=redis.url)
        os.environ.update(DATABASE_URL=pg.url, REDIS_URL=redis.url)
        _postmaster[:] = [int((pg.data / "postmaster.pid").read_text().split()[0])]
        log(f"PostgreSQL {pg.version} at :{pg.port}, Redis {redis.version} at :{redis.port}")
        yield env
    finally:
        testenv.PG_SETTINGS.clear()
        testenv.PG_SETTINGS.update(saved)
        redis.stop()
        pg.stop()
        import shutil

        shutil.rmtree(base, ignore_errors=True)


_postmaster: list[int] = []


def postgres_pids() -> list[int]:
    """This benchmark's PostgreSQL processes (the postmaster and its backends), for CPU accounting."""
    return descendants(_postmaster[0]) if _postmaster else []


def descendants(root: int) -> list[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def django_setup(env: dict) -> None:
    os.environ.update({k: v for k, v in env.items() if k in BENCH_ENV or k in ("DATABASE_URL", "REDIS_URL")})
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# --- processes -----------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pids(self) -> list[int]:
        """This process and all its descendants."""
        return descendants(self.popen.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pids())

    def rss_mb(self) -> dict[int, float]:
        result = {}
        for pid in self.pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        result[pid] = int(line.split()[1]) / 1024
        return result

    def stop(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        self.log_path.unlink(missing_ok=True)


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def start(name: str, argv: list[str], env: dict, ready: str | None = None, timeout: float = 60) -> Proc:
    fd, path = tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".log")
    os.close(fd)
    popen = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=open(path, "wb"), stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
    proc = Proc(name, popen, Path(path))
    deadline = time.monotonic() + timeout
    while ready is not None and ready not in proc.log():
        if popen.poll() is not None or time.monotonic() > deadline:
            output = proc.log()[-3000:]
            proc.stop()
            raise RuntimeError(f"{name} did not start:\n{output}")
        time.sleep(0.1)
    return proc


def gunicorn(env: dict, port: int, workers: int = 3) -> Proc:
    return start("gunicorn", [PYTHON, "-m", "gunicorn", "billmysales.wsgi:application", "-b", f"127.0.0.1:{port}",
                              "--workers", str(workers), "--timeout", "60", "--backlog", "2048", "--log-level", "warning"],
                 env, ready=None)


def wait_http(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def parse_worker(spec: str) -> tuple[str, str, int]:
    """"QUEUES:POOL:CONCURRENCY" (e.g. "ingest,emit:threads:64") as celery_worker's arguments."""
    queues, pool, concurrency = spec.split(":")
    return queues, pool, int(concurrency)


def celery_worker(env: dict, name: str, queues: str, pool: str, concurrency: int, extra: dict | None = None) -> Proc:
    return start(f"worker-{name}", [PYTHON, "-m", "celery", "-A", "billmysales", "worker", "-Q", queues, "-P", pool,
                                    "-c", str(concurrency), "-n", f"{name}@%h", "-l", "warning", "--without-gossip",
                                    "--without-mingle", "--without-heartbeat"],
                 {**env, **(extra or {})}, ready=None)


# --- the machine -----------------------------------------------------------------------------------


def machine_note() -> str:
    """Load average and the busiest processes that are not this benchmark's (its own processes, servers
    included, are left out), for the report. ps's %CPU is the average over each process's life."""
    load = Path("/proc/loadavg").read_text().split()[:3]
    mine = set(descendants(os.getpid()))
    if _postmaster:
        mine.update(postgres_pids())
    out = subprocess.run(["ps", "-eo", "pid,pcpu,comm", "--sort=-pcpu", "--no-headers"], capture_output=True, text=True)
    busy = []
    for line in out.stdout.splitlines():
        pid, pcpu, comm = line.split(None, 2)
        if float(pcpu) >= 5 and int(pid) not in mine:
            busy.append(f"{comm}({pcpu}%)")
    return f"load average {' '.join(load)}; other busy processes: {', '.join(busy[:8]) or 'none'}"


# --- load generator --------------------------------------------------------------------------------


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        values = sorted(self.latencies)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(len(values) * p / 100))] * 1000


async def _request(port: int, raw: bytes, timeout: float = 30.0) -> int:
    """One HTTP/1.1 request on a new connection (gunicorn's sync workers close after each); the status."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    try:
        writer.write(raw)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        if length:
            await asyncio.wait_for(reader.readexactly(length), timeout)
        return status
    finally:
        writer.close()


def http_request(method: str, path: str, body: bytes = b"", headers: dict | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def saturate(port: int, requests, connections: int, seconds: float, warmup: float = 2.0) -> LoadResult:
    """Closed loop: ``connections`` clients each send the next request as soon as the last answered.
    ``requests``: a list of raw requests (cycled), or a function of the request's number returning one."""
    make = requests if callable(requests) else (lambda n: requests[n % len(requests)])
    result = LoadResult()

    async def main():
        index = 0
        measuring = False
        stop_at = time.monotonic() + warmup + seconds

        async def client():
            nonlocal index
            while time.monotonic() < stop_at:
                raw = make(index)
                index += 1
                t0 = time.monotonic()
                try:
                    status = await _request(port, raw)
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                    if measuring:
                        result.errors += 1
                    continue
                if measuring:
                    result.latencies.append(time.monotonic() - t0)
                    result.statuses[status] = result.statuses.get(status, 0) + 1

        tasks = [asyncio.create_task(client()) for _ in range(connections)]
        await asyncio.sleep(warmup)
        measuring = True
        t0 = time.monotonic()
        await asyncio.gather(*tasks)
        result.seconds = time.monotonic() - t0

    asyncio.run(main())
    return result


def fixed_rate(port: int, requests, rate: float, seconds: float) -> LoadResult:
    """Open loop: one request every 1/rate s whatever the answers; latency from the scheduled time, so a
    stalled server is not hidden by the generator waiting for it (no coordinated omission)."""
    make = requests if callable(requests) else (lambda n: requests[n % len(requests)])
    result = LoadResult()

    async def one(raw: bytes, scheduled: float):
        try:
            status = await _request(port, raw)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            result.errors += 1
            return
        result.latencies.append(time.monotonic() - scheduled)
        result.statuses[status] = result.statuses.get(status, 0) + 1

    async def main():
        start_at = time.monotonic() + 0.2
        total = int(rate * seconds)
        tasks = []
        for n in range(total):
            scheduled = start_at + n / rate
            delay = scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(make(n), scheduled)))
        await asyncio.gather(*tasks)
        result.seconds = time.monotonic() - start_at

    asyncio.run(main())
    return result


def mark(value: float, target: float, higher_is_better: bool) -> str:
    return "✔" if (value >= target if higher_is_better else value < target) else "✘"
