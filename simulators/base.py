"""One small base for every vendor simulator: a threaded HTTP server on loopback, routes, fault
injection, counters and a control API.

Simulators are not product code. They implement the documented subset of a vendor's API that the
product calls, so the tests, ``make demo`` and ``bench/`` can run with no external account. Each
vendor module subclasses ``Simulator`` and declares its routes with ``@route``::

    class LibreDTESimulator(Simulator):
        name = "libredte"

        @route("POST", r"/api/dte/documentos/emitir")
        def emitir(self, request: Request) -> Response:
            ...

Started in-process by tests (``with LibreDTESimulator() as sim: sim.url``) or alone
(``python -m simulators libredte --port 8201``).

Faults: a list of rules, each matching a route name (or ``*``), applied before the route runs::

    sim.faults.add(route="generar", kind="status", status=503, rate=0.3)
    sim.faults.add(route="*", kind="delay", delay_ms=300)
    sim.faults.add(route="generar", kind="lost_answer", times=1)   # runs the route, then drops the connection
    sim.faults.add(route="emitir", kind="drop", times=2)           # drops the connection without running it
    sim.faults.add(route="*", kind="rate_limit", retry_after=2)    # 429 with Retry-After

The same rules can be set from another process through the control API, which lives under
``/_sim/`` on every simulator: ``GET /_sim/state`` (counters and the vendor's own state summary),
``POST /_sim/faults`` (JSON list of rules, replaces them), ``DELETE /_sim/faults``, ``POST /_sim/reset``.
"""
from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

FAULT_KINDS = ("status", "delay", "drop", "lost_answer", "rate_limit")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # named groups of the route's pattern

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        """The body as JSON; raises ``HttpError(400)`` when it is not."""
        try:
            return json.loads(self.body or b"null")
        except (ValueError, UnicodeDecodeError):
            raise HttpError(400, {"error": "body is not JSON"}) from None


@dataclass
class Response:
    status: int = 200
    body: Any = None  # bytes are sent as they are; anything else as JSON
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if self.body is None:
            return b""
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8")


class HttpError(Exception):
    """Raised by a route to answer an error: ``raise HttpError(404, "Documento no encontrado")``."""

    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.response = Response(status=status, body=body, headers=headers or {})


def route(method: str, pattern: str, name: str | None = None):
    """Declares a route: ``pattern`` is a regular expression matched against the whole path."""

    def decorate(fn):
        fn._sim_route = (method.upper(), re.compile(pattern + r"\Z"), name or fn.__name__)
        return fn

    return decorate


@dataclass
class FaultRule:
    route: str = "*"
    kind: str = "status"
    status: int = 503
    rate: float = 1.0
    times: int | None = None  # None: for ever
    delay_ms: int = 0
    retry_after: int = 1
    body: Any = None

    def __post_init__(self):
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {FAULT_KINDS}")

    def matches(self, route_name: str) -> bool:
        return self.route in ("*", route_name)


class Faults:
    """Thread-safe list of fault rules; each request draws against them in order."""

    def __init__(self):
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def add(self, **rule) -> FaultRule:
        fault = FaultRule(**rule)
        with self._lock:
            self._rules.append(fault)
        return fault

    def replace(self, rules: list[dict]) -> None:
        parsed = [FaultRule(**rule) for rule in rules]
        with self._lock:
            self._rules = parsed

    def clear(self) -> None:
        with self._lock:
            self._rules = []

    def as_list(self) -> list[dict]:
        with self._lock:
            return [asdict(rule) for rule in self._rules]

    def draw(self, route_name: str) -> list[FaultRule]:
        """The rules that fire for this request (each consumes one of its ``times``)."""
        fired = []
        with self._lock:
            for rule in self._rules:
                if not rule.matches(route_name) or rule.times == 0:
                    continue
                if rule.rate < 1.0 and random.random() >= rule.rate:
                    continue
                if rule.times is not None:
                    rule.times -= 1
                fired.append(rule)
        return fired


class _Server(ThreadingHTTPServer):
    # Benchmarks open hundreds of connections at once; the default listen backlog (5) drops them.
    request_queue_size = 1024
    daemon_threads = True


class _Dropped(Exception):
    """Close the connection without an answer."""


class Simulator:
    """Base of every vendor simulator. Subclasses set ``name`` and declare routes with ``@route``."""

    name = "simulator"

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host, self.port = host, port
        self.faults = Faults()
        self.counters: Counter[str] = Counter()
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._routes = [
            getattr(self, attr)._sim_route + (getattr(self, attr),)
            for attr in dir(type(self))
            if callable(getattr(type(self), attr, None)) and hasattr(getattr(type(self), attr), "_sim_route")
        ]
        self.reset()

    # --- lifecycle -------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forgets the vendor state (subclasses extend ``reset_state``), the counters and the faults."""
        with self.lock:
            self.counters.clear()
            self.faults.clear()
            self.reset_state()

    def reset_state(self) -> None:
        """Subclasses: (re)create the vendor's own state."""

    def state(self) -> dict:
        """Subclasses: a JSON summary of the vendor state for ``GET /_sim/state``."""
        return {}

    def start(self) -> Simulator:
        handler = _handler_for(self)
        self._server = _Server((self.host, self.port), handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"sim-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- dispatch --------------------------------------------------------------------------------

    def dispatch(self, request: Request) -> Response:
        if request.path.startswith("/_sim/"):
            return self._control(request)
        for method, pattern, route_name, fn in self._routes:
            match = pattern.match(request.path)
            if match is None or method != request.method:
                continue
            request.params = match.groupdict()
            self.counters[f"requests:{route_name}"] += 1
            lost_answer = False
            for rule in self.faults.draw(route_name):
                self.counters[f"faults:{route_name}:{rule.kind}"] += 1
                if rule.kind == "delay":
                    time.sleep(rule.delay_ms / 1000)
                elif rule.kind == "drop":
                    raise _Dropped()
                elif rule.kind == "lost_answer":
                    lost_answer = True
                elif rule.kind == "rate_limit":
                    return Response(429, rule.body or {"error": "rate limited"}, {"Retry-After": str(rule.retry_after)})
                elif rule.kind == "status":
                    return Response(rule.status, rule.body if rule.body is not None else {"error": f"simulated {rule.status}"})
            try:
                response = fn(request)
            except HttpError as exc:
                response = exc.response
            if lost_answer:
                raise _Dropped()
            return response
        return Response(404, {"error": f"{self.name} simulator: no route for {request.method} {request.path}"})

    def _control(self, request: Request) -> Response:
        path, method = request.path, request.method
        if path == "/_sim/state" and method == "GET":
            with self.lock:
                return Response(200, {"name": self.name, "counters": dict(self.counters),
                                      "faults": self.faults.as_list(), "state": self.state()})
        if path == "/_sim/faults" and method == "POST":
            rules = request.json()
            if not isinstance(rules, list):
                return Response(400, {"error": "expected a JSON list of fault rules"})
            try:
                self.faults.replace(rules)
            except (TypeError, ValueError) as exc:
                return Response(400, {"error": str(exc)})
            return Response(200, {"faults": self.faults.as_list()})
        if path == "/_sim/faults" and method == "DELETE":
            self.faults.clear()
            return Response(200, {"faults": []})
        if path == "/_sim/reset" and method == "POST":
            self.reset()
            return Response(200, {"reset": True})
        return self.control(request) or Response(404, {"error": f"no control route {method} {path}"})

    def control(self, request: Request) -> Response | None:
        """Subclasses: extra ``/_sim/...`` routes (e.g. send a webhook, expire a token)."""
        return None


def _handler_for(simulator: Simulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections, as with real vendors
        server_version = f"{simulator.name}-simulator"

        def log_message(self, format: str, *args) -> None:
            pass

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(
                method=self.command, path=parts.path, query=parse_qs(parts.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()}, body=body,
            )
            try:
                response = simulator.dispatch(request)
            except _Dropped:
                self.close_connection = True
                return
            except Exception as exc:  # a simulator bug answers 500, like a vendor would, and says what
                response = Response(500, {"error": f"simulator error: {type(exc).__name__}: {exc}"})
            payload = response.encoded()
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    return Handler


def post_json(url: str, payload: bytes, headers: dict[str, str], timeout: float = 10.0) -> tuple[int, bytes]:
    """Sends a delivery (a webhook the simulated vendor pushes) and returns (status, body).

    A connection error answers status 0, so a simulator can count a failed delivery the way the
    vendor would, without raising into its own request handling."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=payload, method="POST", headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""

