#!/usr/bin/env python3
"""Run a command against a throwaway PostgreSQL cluster and a throwaway Redis server.

    python scripts/testenv.py -- COMMAND [ARGS...]

Starts both servers on free loopback ports in a temporary directory, exports DATABASE_URL
(postgres://postgres@127.0.0.1:PORT/bms_test) and REDIS_URL (redis://127.0.0.1:PORT/0), runs
COMMAND, stops both servers (also on Ctrl-C, SIGTERM or an error), removes the directory and exits
with COMMAND's exit code.

If DATABASE_URL and REDIS_URL are both set already, they are used as they are and nothing starts.

PostgreSQL refuses to run as root: as root it runs as the `postgres` user (`runuser -u postgres --`).
Tuned for tests, not durability: fsync, synchronous_commit and full_page_writes off;
max_connections=300 for the concurrency tests.

Environment knobs: PG_BINDIR (directory holding initdb/pg_ctl), REDIS_SERVER (path to redis-server),
TESTENV_KEEP=1 (keep the temporary directory, with the server logs, after the run).

Standard library only: it runs before any virtualenv package is trusted.
"""
from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

MIN_PG_MAJOR = 15
DB_NAME = "bms_test"
PG_USER = "postgres"
HOST = "127.0.0.1"
START_ATTEMPTS = 3
PG_SETTINGS = {
    "listen_addresses": f"'{HOST}'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "128MB",
    "log_min_messages": "warning",
    "logging_collector": "off",
}


def log(msg: str) -> None:
    print(f"testenv: {msg}", file=sys.stderr, flush=True)


class TestEnvError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- PostgreSQL ------------------------------------------------------------------------------


def find_pg_bindir() -> Path:
    override = os.environ.get("PG_BINDIR")
    candidates = [Path(override)] if override else []
    versions = []
    for d in glob.glob("/usr/lib/postgresql/*/bin"):
        m = re.match(r"(\d+)", Path(d).parent.name)
        if m:
            versions.append((int(m.group(1)), Path(d)))
    candidates += [d for v, d in sorted(versions, reverse=True) if v >= MIN_PG_MAJOR]
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    for d in candidates:
        if (d / "initdb").is_file() and (d / "pg_ctl").is_file():
            return d
    raise TestEnvError(
        f"no PostgreSQL >= {MIN_PG_MAJOR} server binaries (initdb, pg_ctl) found under "
        "/usr/lib/postgresql/*/bin; run `bash scripts/ensure_system_deps.sh` "
        "(or set PG_BINDIR)"
    )


class Postgres:
    def __init__(self, bindir: Path, base: Path, as_root: bool):
        self.bindir = bindir
        self.base = base
        self.as_root = as_root
        self.data = base / "pgdata"
        self.sock = base / "pgsock"
        self.logfile = base / "postgresql.log"
        self.port = 0
        self.version = "?"
        self.started = False
        self.owner = None
        if as_root:
            try:
                self.owner = pwd.getpwnam(PG_USER)
            except KeyError:
                raise TestEnvError(
                    "running as root but there is no 'postgres' user to run PostgreSQL as "
                    "(installing Debian's postgresql package creates it)"
                ) from None

    def _cmd(self, *args: str) -> list[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", PG_USER, "--", *cmd]
        return cmd

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        # cwd=base: the postgres user may not be able to enter the caller's directory.
        return subprocess.run(
            self._cmd(*args), cwd=self.base, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )

    def prepare(self) -> None:
        for d in (self.data, self.sock):
            d.mkdir(mode=0o700)
        self.logfile.touch()
        if self.as_root:
            for p in (self.data, self.sock, self.logfile):
                os.chown(p, self.owner.pw_uid, self.owner.pw_gid)
        res = self._run(
            "initdb", "-D", str(self.data), "-U", PG_USER, "--auth=trust", "--encoding=UTF8",
            "--locale=C", "--no-sync",
        )
        if res.returncode != 0:
            raise TestEnvError(f"initdb failed ({res.returncode}):\n{res.stdout}")
        with open(self.data / "postgresql.conf", "a") as f:
            f.write("\n# testenv: throwaway test cluster\n")
            f.write(f"unix_socket_directories = '{self.sock}'\n")
            for k, v in PG_SETTINGS.items():
                f.write(f"{k} = {v}\n")

    def start(self) -> None:
        last = ""
        for _ in range(START_ATTEMPTS):
            self.port = free_port()
            res = subprocess.run(
                self._cmd(
                    "pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-w", "-t", "60",
                    "-o", f"-p {self.port}", "start",
                ),
                cwd=self.base, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                timeout=90, stdin=subprocess.DEVNULL,
                start_new_session=True,  # the server must not get the terminal's Ctrl-C
            )
            if res.returncode == 0:
                self.started = True
                break
            last = f"{res.stdout}\n--- postgresql.log ---\n{tail(self.logfile)}"
            self.started = (self.data / "postmaster.pid").exists()
            self.stop()  # a half-started server (e.g. lost the port race)
        else:
            raise TestEnvError(f"PostgreSQL did not start:\n{last}")
        psql = str(self.bindir / "psql")
        base = [psql, "-h", HOST, "-p", str(self.port), "-U", PG_USER, "-X", "-q", "-A", "-t"]
        res = subprocess.run(
            [*base, "-d", "postgres", "-c", "SHOW server_version", "-c",
             f'CREATE DATABASE "{DB_NAME}"'],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60,
            stdin=subprocess.DEVNULL,
        )
        if res.returncode != 0:
            raise TestEnvError(f"could not create database {DB_NAME}:\n{res.stdout}")
        self.version = (res.stdout.strip().splitlines() or ["?"])[0].split()[0]

    @property
    def url(self) -> str:
        return f"postgres://{PG_USER}@{HOST}:{self.port}/{DB_NAME}"

    def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        try:
            res = subprocess.run(
                self._cmd("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop"),
                cwd=self.base, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                timeout=45, stdin=subprocess.DEVNULL,
            )
            if res.returncode == 0:
                return
        except (subprocess.TimeoutExpired, OSError):
            pass
        # Last resort: kill the postmaster by its pid file (its children follow it).
        try:
            pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGKILL)
            log(f"killed PostgreSQL postmaster {pid}")
        except (OSError, ValueError, IndexError):
            pass


# --- Redis -----------------------------------------------------------------------------------


def find_redis_server() -> str:
    for c in (os.environ.get("REDIS_SERVER"), shutil.which("redis-server"), "/usr/bin/redis-server"):
        if c and os.access(c, os.X_OK):
            return c
    raise TestEnvError(
        "redis-server not found; run `bash scripts/ensure_system_deps.sh` (or set REDIS_SERVER)"
    )


def redis_command(port: int, *args: str, timeout: float = 2.0) -> bytes:
    """Send one command in RESP and return the raw first reply line(s)."""
    payload = f"*{len(args)}\r\n".encode()
    for a in args:
        b = a.encode()
        payload += b"$%d\r\n%s\r\n" % (len(b), b)
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(payload)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            if data.startswith((b"+", b"-", b":")) and data.endswith(b"\r\n"):
                break
            if data.startswith(b"$"):
                header, _, rest = data.partition(b"\r\n")
                if len(rest) >= int(header[1:]) + 2:
                    break
        return data


class Redis:
    def __init__(self, exe: str, base: Path):
        self.exe = exe
        self.dir = base / "redis"
        self.logfile = self.dir / "redis.log"
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.version = "?"

    def start(self) -> None:
        self.dir.mkdir(mode=0o700)
        last = ""
        for _ in range(START_ATTEMPTS):
            self.port = free_port()
            self.proc = subprocess.Popen(
                [self.exe, "--port", str(self.port), "--bind", HOST, "--dir", str(self.dir),
                 "--save", "", "--appendonly", "no", "--daemonize", "no",
                 "--logfile", str(self.logfile), "--maxclients", "1000"],
                cwd=self.dir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if redis_command(self.port, "PING").startswith(b"+PONG"):
                        info = redis_command(self.port, "INFO", "server").decode(errors="replace")
                        m = re.search(r"redis_version:(\S+)", info)
                        self.version = m.group(1) if m else "?"
                        return
                except OSError:
                    pass
                time.sleep(0.05)
            last = tail(self.logfile)
            self.stop()
        raise TestEnvError(f"redis-server did not start:\n{last}")

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# --- temp dir --------------------------------------------------------------------------------


def make_base_dir(as_root: bool) -> Path:
    """A temp dir the postgres user can reach: every parent must be traversable (o+x)."""
    roots = [tempfile.gettempdir(), "/tmp"] if as_root else [tempfile.gettempdir()]
    for root in roots:
        if not as_root or all_parents_traversable(Path(root)):
            base = Path(tempfile.mkdtemp(prefix="bms-testenv-", dir=root))
            if as_root:
                base.chmod(0o711)
            return base
    # No traversable temp root: open up the first candidate's parents (o+x only).
    base = Path(tempfile.mkdtemp(prefix="bms-testenv-", dir=roots[0]))
    base.chmod(0o711)
    for p in base.parents:
        mode = p.stat().st_mode
        if not mode & stat.S_IXOTH:
            log(f"chmod o+x {p} so the postgres user can reach {base}")
            p.chmod(mode | stat.S_IXOTH)
    return base


def all_parents_traversable(path: Path) -> bool:
    path = path.resolve()
    return all(p.stat().st_mode & stat.S_IXOTH for p in (path, *path.parents))


# --- main ------------------------------------------------------------------------------------


def run_command(cmd: list[str], env: dict[str, str]) -> int:
    """Run cmd in the foreground process group; Ctrl-C reaches it directly, SIGTERM is forwarded."""
    try:
        proc = subprocess.Popen(cmd, env=env)
    except OSError as e:
        log(f"cannot run {cmd[0]}: {e}")
        return 127

    def forward(signum, _frame):
        if proc.poll() is None:
            proc.send_signal(signum)

    old_term = signal.signal(signal.SIGTERM, forward)
    old_hup = signal.signal(signal.SIGHUP, forward)
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the child gets it from the terminal
    try:
        rc = proc.wait()
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGHUP, old_hup)
        signal.signal(signal.SIGINT, old_int)
    return 128 - rc if rc < 0 else rc


def main(argv: list[str]) -> int:
    if "--" in argv:
        cmd = argv[argv.index("--") + 1:]
    else:
        cmd = argv
    if not cmd:
        print(__doc__, file=sys.stderr)
        return 2

    env = dict(os.environ)
    if env.get("DATABASE_URL") and env.get("REDIS_URL"):
        print(f"testenv: using DATABASE_URL={redact(env['DATABASE_URL'])} and "
              f"REDIS_URL={redact(env['REDIS_URL'])} from the environment (no servers started)",
              flush=True)
        return run_command(cmd, env)

    as_root = os.geteuid() == 0
    pg = redis = None
    base: Path | None = None

    def on_term(signum, _frame):
        raise KeyboardInterrupt  # unwind through the finally below while starting up

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    t0 = time.monotonic()
    try:
        bindir = find_pg_bindir()
        redis_exe = find_redis_server()
        base = make_base_dir(as_root)
        pg = Postgres(bindir, base, as_root)
        redis = Redis(redis_exe, base)
        pg.prepare()
        pg.start()
        redis.start()
        env["DATABASE_URL"] = pg.url
        env["REDIS_URL"] = redis.url
        print(
            f"testenv: PostgreSQL {pg.version} at {HOST}:{pg.port}, "
            f"Redis {redis.version} at {HOST}:{redis.port} "
            f"(ready in {time.monotonic() - t0:.1f}s; DATABASE_URL={pg.url} REDIS_URL={redis.url})",
            flush=True,
        )
        return run_command(cmd, env)
    except TestEnvError as e:
        log(f"error: {e}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # do not leave servers behind on a 2nd Ctrl-C
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if redis is not None:
            redis.stop()
        if pg is not None:
            pg.stop()
        if base is not None:
            if os.environ.get("TESTENV_KEEP") == "1":
                log(f"kept {base} (TESTENV_KEEP=1)")
            else:
                shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
