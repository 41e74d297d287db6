"""docs/integrators.md, executed: the walk-through's curl commands run over HTTP, in the order the guide
shows them, against a live server, the in-process WooCommerce and LibreDTE simulators and a real Celery
worker; the guide's answers, its webhook headers and payload, and its Python and Node.js verification
snippets are checked against what really happens.

The walk-through is read from the ``bash`` blocks between ``<!-- walkthrough -->`` and
``<!-- /walkthrough -->``. Each block is a small subset of shell that ``Shell`` below runs with
``requests`` (not the Django test client):

- ``export NAME=value`` / ``NAME=value``; the addresses ``BMS``, ``WOO``, ``LIBREDTE`` and ``HOOKS`` are
  replaced by the test's own (the live server, the simulators, a free port for the receiver);
- ``curl`` with ``-sS -X -H -d/--data-binary (@- with a heredoc) --data-urlencode -u -o -b -c``, piped
  to ``tee answer.json`` or not; a ``# → NNN`` comment before it is the status every call must answer;
- ``NAME=$(jq -r PATH answer.json)`` (the last answer) and ``NAME=$(awk '$6 == "csrftoken" …' cookies.txt)``;
- ``until curl … | jq -e 'EXPR' > /dev/null; do sleep 1; done`` with ``PATH == literal`` or
  ``length == N``;
- ``BMS_WEBHOOK_SECRET="$SECRET" python3 receiver.py &``: starts the guide's own receiver (the Python
  snippet, exec'd from the guide) on the ``HOOKS`` port; ``sleep N``.

Anything else in a walk-through block fails the test, so the guide cannot show a command nobody ran.
A ``json`` block after a command is the answer it shows: every key it names must be in the real answer
(recursively; list items by position, or by ``kind`` when they have one), with the same JSON type, and
the same value for booleans and for the keys in ``EXACT_KEYS``.
"""
import io
import json
import re
import shutil
import subprocess
import textwrap
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from django.core.management import call_command

from gateways.models import Document, Order, WebhookDelivery
from gateways.outbox import webhook_signature
from simulators.libredte import LibreDTESimulator
from simulators.woocommerce import WooCommerceSimulator
from tests.gateways.resilience_helpers import free_port

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "integrators.md"
TIMEOUT = 60
EXACT_KEYS = {
    "status", "scope", "platform", "provider", "environment", "kind", "event_type", "type", "code", "currency", "mode",
    "price_basis", "payment_status", "name", "tipo_dte", "default_document_type", "emisor_rut", "events", "outcome", "role",
}


def guide_text() -> str:
    return GUIDE.read_text(encoding="utf-8")


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block, in order."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", text, re.S | re.M)]


def walkthrough_blocks() -> list[tuple[str, str]]:
    text = guide_text()
    start, end = text.index("<!-- walkthrough -->"), text.index("<!-- /walkthrough -->")
    return fenced_blocks(text[start:end])


def snippet(name: str) -> str:
    """The fenced block right after ``<!-- snippet:<name> -->``."""
    text = guide_text()
    marker = f"<!-- snippet:{name} -->"
    assert marker in text, f"{marker} is missing from {GUIDE.name}"
    return fenced_blocks(text[text.index(marker):])[0][1]


def reference_block(language: str, after: str) -> str:
    """The first ``language`` block after the text ``after`` in the guide's reference part."""
    text = guide_text()
    return next(body for lang, body in fenced_blocks(text[text.index(after):]) if lang == language)


# --- a tiny shell ---------------------------------------------------------------------------------------

OPERATORS = ("<<", "|", ">", "&", ";")


def words(line: str, env: dict) -> list[str]:
    """Splits a command line as the shell does for this subset: quotes, ``$NAME``/``${NAME}`` expansion
    (not inside single quotes), and the operators in ``OPERATORS`` as words of their own."""
    out, word, quoted, i = [], "", False, 0

    def expand(at: int) -> tuple[str, int]:
        m = re.compile(r"\$(?:\{(\w+)\}|(\w+))").match(line, at)
        if not m:
            return "$", at + 1
        name = m.group(1) or m.group(2)
        assert name in env, f"${name} is used before it is set: {line}"
        return env[name], m.end()

    while i < len(line):
        ch = line[i]
        if ch.isspace():
            if word or quoted:
                out.append(word)
            word, quoted, i = "", False, i + 1
        elif ch == "'":
            end = line.index("'", i + 1)
            word, quoted, i = word + line[i + 1:end], True, end + 1
        elif ch == '"':
            i += 1
            quoted = True
            while line[i] != '"':
                if line[i] == "\\" and line[i + 1] in '"\\$':
                    word, i = word + line[i + 1], i + 2
                elif line[i] == "$":
                    value, i = expand(i)
                    word += value
                else:
                    word, i = word + line[i], i + 1
            i += 1
        elif ch == "$":
            value, i = expand(i)
            word += value
        elif any(line.startswith(op, i) for op in OPERATORS):
            op = next(op for op in OPERATORS if line.startswith(op, i))
            if word or quoted:
                out.append(word)
            out.append(op)
            word, quoted, i = "", False, i + len(op)
        else:
            word, i = word + ch, i + 1
    if word or quoted:
        out.append(word)
    return out


def expand(text: str, env: dict) -> str:
    """``$NAME`` / ``${NAME}`` in an unquoted heredoc."""

    def value(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        assert name in env, f"${name} is used before it is set"
        return env[name]

    return re.sub(r"\$(?:\{(\w+)\}|(\w+))", value, text)


def commands(block: str) -> list[tuple[str, str | None, int | None]]:
    """(command line, heredoc body, expected status) for each command of a bash block."""
    lines, result, expected, i = block.splitlines(), [], None, 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip():
            continue
        if line.lstrip().startswith("#"):
            m = re.match(r"\s*# → (\d{3})\b", line)
            if m:
                expected = int(m.group(1))
            continue
        while line.endswith("\\"):
            line = line[:-1] + " " + lines[i].strip()
            i += 1
        heredoc = None
        if "<<EOF" in line:
            body = []
            while lines[i] != "EOF":
                body.append(lines[i])
                i += 1
            i += 1
            heredoc = "\n".join(body)
        result.append((line, heredoc, expected))
        if "curl " in line:
            expected = None
    return result


def jq_path(data, path: str):
    """``.a.b[0].c`` (or ``.``) applied to ``data``."""
    value = data
    for key, index in re.findall(r"\.(\w+)|\[(\d+)\]", path):
        if key:
            value = value.get(key) if isinstance(value, dict) else None
        elif isinstance(value, list):
            value = value[int(index)] if int(index) < len(value) else None
        else:
            value = None
    return value


def jq_test(data, expression: str) -> bool:
    """``PATH == literal``, ``length == N`` or ``PATH | length == N``, as ``jq -e`` would answer."""
    left, right = (part.strip() for part in expression.split("=="))
    expected = json.loads(right)
    if left.endswith("length"):
        path = left.removesuffix("length").rstrip("| ").strip() or "."
        value = jq_path(data, path)
        return isinstance(value, list | dict | str) and len(value) == expected
    return jq_path(data, left) == expected


def jq_raw(value) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


class Shell:
    """Runs the walk-through's commands; keeps the variables, the cookie jars and the last answer."""

    def __init__(self, env: dict, start_receiver):
        self.env = dict(env)
        self.start_receiver = start_receiver
        self.jars: dict[str, requests.Session] = {}
        self.plain = requests.Session()
        self.answer: requests.Response | None = None
        self.calls: list[tuple[str, str, int]] = []
        self.files: dict[str, requests.Response] = {}

    def run(self, line: str, heredoc: str | None, expected: int | None) -> None:
        stripped = line.strip()
        if m := re.fullmatch(r"(?:export )?(\w+)=\$\(jq -r '?([^' ]+)'? answer\.json\)", stripped):
            self.env[m.group(1)] = jq_raw(jq_path(self.answer.json(), m.group(2)))
        elif m := re.fullmatch(r"(\w+)=\$\(awk '\$6 == \"(\w+)\" \{print \$7\}' (\S+)\)", stripped):
            self.env[m.group(1)] = self.jars[m.group(3)].cookies[m.group(2)]
        elif m := re.fullmatch(r"until (curl .*) \| jq -e '([^']+)' > /dev/null; do sleep 1; done", stripped):
            deadline = time.monotonic() + TIMEOUT
            while True:
                answer = self.curl(words(m.group(1), self.env), None, expected)
                if jq_test(answer.json(), m.group(2)):
                    break
                assert time.monotonic() < deadline, f"still not {m.group(2)} after {TIMEOUT}s: {answer.text[:2000]}"
                time.sleep(0.5)
        elif stripped == 'BMS_WEBHOOK_SECRET="$SECRET" python3 receiver.py &':
            self.start_receiver(self.env["SECRET"])
        elif m := re.fullmatch(r"sleep (\d+)", stripped):
            time.sleep(int(m.group(1)))
        elif m := re.fullmatch(r"(?:export )?(\w+)=(?!\$\()(.+)", stripped):
            [value] = words(m.group(2), self.env)
            self.env[m.group(1)] = value
        elif stripped.startswith("curl "):
            argv = words(stripped, self.env)
            if "|" in argv:
                assert argv[argv.index("|") + 1:] == ["tee", "answer.json"], f"unsupported pipe: {line}"
                argv = argv[:argv.index("|")]
            self.curl(argv, heredoc, expected)
        else:
            raise AssertionError(f"the walk-through shows a command this test cannot run: {line}")

    def curl(self, argv: list[str], heredoc: str | None, expected: int | None) -> requests.Response:
        assert argv[0] == "curl"
        assert expected is not None, f"no '# → <status>' before: {' '.join(argv)}"
        method, url, headers, data, form, out, jar, auth = None, None, {}, None, [], None, None, None
        args = iter(argv[1:])
        for arg in args:
            if arg in ("-s", "-S", "-sS"):
                continue
            if arg == "-X":
                method = next(args)
            elif arg == "-H":
                name, _, value = next(args).partition(":")
                headers[name.strip()] = value.strip()
            elif arg in ("-d", "--data", "--data-binary"):
                value = next(args)
                data = (expand(heredoc, self.env) + "\n") if value == "@-" else value
            elif arg == "--data-urlencode":
                form.append(tuple(next(args).split("=", 1)))
            elif arg == "-o":
                out = next(args)
            elif arg in ("-b", "-c"):
                jar = next(args)
            elif arg == "-u":
                auth = tuple(next(args).split(":", 1))
            elif arg == "<<":
                assert next(args) == "EOF" and heredoc is not None
            elif arg.startswith("-"):
                raise AssertionError(f"curl option {arg} is not supported by this test")
            else:
                url = arg
        if form:
            data = "&".join(f"{requests.utils.quote(k, safe='')}={requests.utils.quote(v, safe='')}" for k, v in form)
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif data is not None:
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        method = method or ("POST" if data is not None else "GET")
        session = self.jars.setdefault(jar, requests.Session()) if jar else self.plain
        answer = session.request(method, url, headers=headers, data=data.encode() if data is not None else None,
                                 auth=auth, allow_redirects=False, timeout=60)
        if not jar:
            self.plain.cookies.clear()
        assert answer.status_code == expected, f"{method} {url} answered {answer.status_code}, the guide says {expected}: {answer.text[:2000]}"
        self.calls.append((method, urlsplit(url).path, answer.status_code))
        if out:
            self.files[out] = answer
        else:
            self.answer = answer
        return answer


def assert_shape(shown, real, where: str = "answer") -> None:
    """Everything the guide shows is in the real answer: keys, JSON types, booleans and ``EXACT_KEYS``."""
    if isinstance(shown, dict):
        assert isinstance(real, dict), f"{where}: the guide shows an object, the API answered {real!r}"
        for key, value in shown.items():
            assert key in real, f"{where}: the guide shows {key!r}, the API answers only {sorted(real)}"
            if key in EXACT_KEYS and not isinstance(value, dict | list | type(None)) or key == "events":
                assert real[key] == value, f"{where}.{key}: the guide shows {value!r}, the API answered {real[key]!r}"
            assert_shape(value, real[key], f"{where}.{key}")
    elif isinstance(shown, list):
        assert isinstance(real, list) and len(real) >= len(shown), f"{where}: the guide shows {len(shown)} items: {real!r}"
        by_kind = all(isinstance(item, dict) and "kind" in item for item in shown + real)
        for n, item in enumerate(shown):
            # Items with a "kind" (side effects, emissions) come in no particular order: matched by kind.
            twin = next((r for r in real if r["kind"] == item["kind"]), None) if by_kind else real[n]
            assert twin is not None, f"{where}: no item of kind {item['kind']!r} in {real!r}"
            assert_shape(item, twin, f"{where}[{n}]")
    elif shown is not None and real is not None:
        assert type(shown) is type(real), f"{where}: the guide shows {shown!r}, the API answered {real!r}"
        if isinstance(shown, bool):
            assert shown == real, f"{where}: the guide shows {shown!r}, the API answered {real!r}"


# --- the receiver -------------------------------------------------------------------------------------


def snippet_namespace() -> dict:
    namespace = {"__name__": "integrators_guide_snippet"}
    exec(compile(snippet("python"), f"{GUIDE.name}:snippet:python", "exec"), namespace)
    return namespace


class Receiver:
    """The guide's receiver (its ``make_handler``), on a port chosen before the endpoint is registered."""

    def __init__(self):
        self.port = free_port()
        self.events: list[dict] = []
        self.headers: list[dict] = []
        self.server = None

    def start(self, secret: str) -> None:
        handler = snippet_namespace()["make_handler"](secret, self.events.append)
        headers = self.headers

        class Recording(handler):
            def do_POST(self):
                headers.append(dict(self.headers))
                super().do_POST()

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Recording)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


# --- the walk-through ---------------------------------------------------------------------------------


@pytest.fixture
def woo():
    with WooCommerceSimulator(port=free_port()) as simulator:
        yield simulator


@pytest.fixture
def libredte():
    with LibreDTESimulator(port=free_port()) as simulator:
        yield simulator


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_walkthrough_runs_as_written(live_server, settings, woo, libredte, purge_broker, celery_worker_process):
    settings.BMS_PUBLIC_URL = live_server.url
    call_command("seed_demo", stdout=io.StringIO())  # what `make demo` runs
    celery_worker_process(name="walkthrough", BMS_PUBLIC_URL=live_server.url)
    receiver = Receiver()
    shell = Shell({"BMS": live_server.url, "WOO": woo.url, "LIBREDTE": libredte.url,
                   "HOOKS": f"http://127.0.0.1:{receiver.port}/billmysales"}, receiver.start)
    overridden = {"BMS", "WOO", "LIBREDTE", "HOOKS"}
    try:
        for language, body in walkthrough_blocks():
            if language == "bash":
                for line, heredoc, expected in commands(body):
                    name = re.match(r"\s*export (\w+)=", line)
                    if name and name.group(1) in overridden:
                        continue  # the guide's addresses, replaced by this run's
                    shell.run(line, heredoc, expected)
            elif language == "json":
                assert shell.answer is not None, "a json answer shown before any command"
                assert_shape(json.loads(body), shell.answer.json())
            else:
                raise AssertionError(f"unexpected {language!r} block in the walk-through")

        # The order ended with exactly one document, the one the API and the webhook name.
        order = Order.objects.get(pk=shell.env["ORDER"])
        assert (order.gateway_id, order.number, order.is_test) == (int(shell.env["GATEWAY"]), shell.env["NUMBER"], False)
        [document] = Document.objects.filter(order=order)
        assert document.pk == int(shell.env["DOCUMENT"]) and document.tipo_dte == 39
        # LibreDTE issued it: one document there too, with the same folio.
        with libredte.lock:
            assert [(d.dte, d.folio) for d in libredte.issued.values() if d.folio == document.folio and d.dte == 39] == [
                (39, document.folio)]

        pdf, xml = shell.files["boleta.pdf"], shell.files["boleta.xml"]
        assert pdf.headers["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
        assert xml.headers["Content-Type"].startswith("application/xml") and f"<Folio>{document.folio}</Folio>".encode() in xml.content

        # The receiver (the guide's snippet) verified and took the test event and the document.issued event.
        issued = [event for event in receiver.events if event["type"] == "document.issued" and event["data"]["order"] == order.pk]
        assert [event["data"]["document"]["id"] for event in issued] == [document.pk]
        assert any(event["type"] == "webhook.test" for event in receiver.events)
        [delivery] = WebhookDelivery.objects.filter(endpoint_id=shell.env["ENDPOINT"], event_type="document.issued",
                                                    payload__data__order=order.pk)
        assert str(delivery.event_id) == issued[0]["id"]
        # The envelope and the headers the guide's reference shows are what was received.
        assert_shape(json.loads(reference_block("json", "Each delivery is one POST of a JSON")), issued[0], "payload")
        header_names = [line.split(":")[0] for line in reference_block("http", "With these headers:").splitlines()[1:] if line]
        received = next(h for h in receiver.headers if h.get("BillMySales-Event-Id") == issued[0]["id"])
        assert set(header_names) <= set(received), f"missing headers: {set(header_names) - set(received)}"
        assert received["User-Agent"] in reference_block("http", "With these headers:")
        assert received["BillMySales-Signature"].startswith(f"t={received['BillMySales-Timestamp']},v1=")
    finally:
        receiver.stop()


# --- the signature snippets ---------------------------------------------------------------------------

SECRET = "whsec_0123456789abcdef"
BODY = json.dumps({"id": "5b7d0c2e", "type": "document.issued", "data": {"folio": 2, "name": "Boleta electrónica"}},
                  ensure_ascii=False, separators=(",", ":")).encode()


def signed(timestamp: int, body: bytes = BODY, secret: str = SECRET) -> str:
    """The header exactly as ``gateways.outbox`` builds it."""
    return f"t={timestamp},v1={webhook_signature(secret, timestamp, body)}"


def test_the_python_snippet_accepts_our_signature_and_rejects_tampering_and_old_timestamps():
    verify = snippet_namespace()["verify_signature"]
    now = 1_795_359_961
    assert verify(SECRET, signed(now), BODY, now=now)
    assert verify(SECRET, signed(now - 300), BODY, now=now)
    assert not verify(SECRET, signed(now - 301), BODY, now=now)
    assert not verify(SECRET, signed(now + 301), BODY, now=now)
    assert not verify(SECRET, signed(now), BODY.replace(b"2", b"3"), now=now)
    assert not verify("whsec_other", signed(now), BODY, now=now)
    assert not verify(SECRET, f"t={now}", BODY, now=now)
    assert not verify(SECRET, "", BODY, now=now)
    # Several v1 values (e.g. a receiver given two during a switch) pass when one matches.
    assert verify(SECRET, f"t={now},v1={'0' * 64},v1={webhook_signature(SECRET, now, BODY)}", BODY, now=now)


def test_the_python_snippet_compares_in_constant_time():
    source = snippet("python")
    assert "hmac.compare_digest" in source and "== signature" not in source


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_the_node_snippet_accepts_our_signature_and_rejects_tampering_and_old_timestamps(tmp_path):
    (tmp_path / "verify.js").write_text(snippet("node"), encoding="utf-8")
    now = 1_795_359_961
    cases = {
        "fresh": (signed(now), BODY, True), "five_minutes": (signed(now - 300), BODY, True),
        "too_old": (signed(now - 301), BODY, False), "future": (signed(now + 301), BODY, False),
        "tampered": (signed(now), BODY.replace(b"2", b"3"), False), "no_v1": (f"t={now}", BODY, False),
        "short_v1": (f"t={now},v1=abcd", BODY, False),
    }
    harness = textwrap.dedent("""
        const { verifySignature } = require("./verify.js");
        const cases = JSON.parse(process.argv[2]);
        const out = {};
        for (const [name, [header, body]] of Object.entries(cases)) {
          out[name] = verifySignature(%s, header, Buffer.from(body, "base64"), %d);
        }
        console.log(JSON.stringify(out));
    """) % (json.dumps(SECRET), now)
    (tmp_path / "harness.js").write_text(harness, encoding="utf-8")
    import base64

    argument = json.dumps({name: [header, base64.b64encode(body).decode()] for name, (header, body, _ok) in cases.items()})
    result = subprocess.run(["node", "harness.js", argument], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {name: ok for name, (_h, _b, ok) in cases.items()}
    assert "crypto.timingSafeEqual" in snippet("node")


# --- the reference part: each statement against the code ---------------------------------------------

ROOT = GUIDE.parents[1]
CODE_DIRS = ("accounts", "billers", "sources", "rules", "gateways", "billmysales")


def error_table() -> dict[str, str]:
    """The guide's error codes → their status cell."""
    text = guide_text()
    start = text.index("| code | status | when |")
    rows = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[1]
    return rows


def codes_in_code() -> set[str]:
    """Every error code the API code names: ApiError("x"…), ValidationError(…, code="x"), the generic and
    refusal tables, the body-size middleware."""
    from billmysales.api.errors import GENERIC_CODES, STATUS_FOR_CODE
    from gateways.api.views import REFUSAL_CODES

    found = set(GENERIC_CODES.values()) | set(STATUS_FOR_CODE) | set(REFUSAL_CODES.values()) | {"not_emitted", "payload_too_large"}
    for folder in CODE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            text = path.read_text(encoding="utf-8")
            found |= set(re.findall(r'ApiError\(\s*"(\w+)"', text))
            found |= set(re.findall(r'\bcode="(\w+)"', text))
    return found - {"required", "null", "blank", "invalid_choice", "does_not_exist"}


def test_the_error_table_lists_every_code_the_api_answers_with_its_status():
    from billmysales.api.errors import STATUS_FOR_CODE

    table, codes = error_table(), codes_in_code()
    assert {"invalid", "not_found", "throttled", "idempotency_key_reused", "test_sale_required"} <= codes
    assert not codes - set(table), f"codes missing from the guide's table: {sorted(codes - set(table))}"
    assert not set(table) - codes, f"the guide lists codes nothing answers: {sorted(set(table) - codes)}"
    for code, status in STATUS_FOR_CODE.items():
        assert table[code].startswith(str(status)), f"{code}: the guide says {table[code]}, the API {status}"


def test_the_events_table_lists_every_event():
    from gateways.models import WebhookEventType

    text = guide_text()
    table = text[text.index("| event | when | `data` |"):text.index('"The order" is')]
    assert set(re.findall(r"^\| `([\w.]+)` \|", table, re.M)) == set(WebhookEventType.values)


def test_the_numbers_the_guide_gives_are_the_settings_defaults(settings):
    from accounts import idempotency
    from billmysales.api.pagination import KeysetPagination
    from gateways import outbox

    text = guide_text()
    assert settings.BMS_WEBHOOK_RETRY_DELAYS == [30, 60, 300, 600, 1800, 3600, 7200, 14400, 28800, 43200, 86400]
    assert "30 s, 1 min, 5 min, 10 min, 30 min, 1 h, 2 h, 4 h,\n  8 h, 12 h and 24 h" in text
    assert settings.BMS_WEBHOOK_DISABLE_AFTER_HOURS == 72 and "`BMS_WEBHOOK_DISABLE_AFTER_HOURS` (72)" in text
    assert outbox.TIMEOUT == (5, 10) and "within 5 s to connect and 10 s to read" in text
    assert outbox.EXCERPT == 500 and "first 500\n  characters" in text
    assert settings.BMS_IDEMPOTENCY_DAYS == 7 and idempotency.WAIT_SECONDS == 10
    assert (KeysetPagination.page_size, KeysetPagination.max_page_size) == (50, 500) and "from 1 to 500 (default 50)" in text
    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] == {"client": "1200/min", "anon": "60/min"}
    assert "(default `1200/min`)" in text and "(default `60/min`)" in text


@pytest.fixture
def keys(account, actor):
    from accounts.services import api_key_create

    _, read = api_key_create(account=account, name="lectura", scope="read", actor=actor)
    key, write = api_key_create(account=account, name="escritura", scope="write", actor=actor)
    return {"read": f"Bearer {read}", "write": f"Bearer {write}", "write_key": key}


def api(client_headers: str | None = None, **extra):
    from rest_framework.test import APIClient

    client = APIClient()
    if client_headers:
        client.credentials(HTTP_AUTHORIZATION=client_headers, **extra)
    elif extra:
        client.credentials(**extra)
    return client


ENDPOINT = {"url": "http://127.0.0.1:9/hooks", "events": ["document.issued"]}


def test_read_keys_read_write_keys_write_keys_do_not_manage_keys(keys, actor):
    from accounts.services import api_key_revoke

    assert api(keys["read"]).get("/api/v1/orders/").status_code == 200
    refused = api(keys["read"]).post("/api/v1/webhook-endpoints/", ENDPOINT, format="json")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "permission_denied")
    assert api(keys["write"]).post("/api/v1/webhook-endpoints/", ENDPOINT, format="json").status_code == 201
    managing = api(keys["write"]).get("/api/v1/api-keys/")
    assert (managing.status_code, managing.json()["error"]["code"]) == (403, "permission_denied")
    nobody = api().get("/api/v1/orders/")
    assert (nobody.status_code, nobody.json()["error"]["code"]) == (401, "not_authenticated")
    api_key_revoke(api_key=keys["write_key"], actor=actor)
    revoked = api(keys["write"]).get("/api/v1/orders/")
    assert (revoked.status_code, revoked.json()["error"]["code"]) == (401, "authentication_failed")


def test_the_error_body_has_code_message_and_fields(keys):
    answer = api(keys["write"]).post("/api/v1/billers/", {
        "name": "LibreDTE", "provider": "sandbox", "environment": "certification", "emisor_rut": "76.086.428-4",
        "emisor_razon_social": "Empresa", "emisor_giro": "Comercio", "emisor_acteco": 479100,
        "emisor_address": "Calle 1", "emisor_comuna": "Santiago"}, format="json")
    assert answer.status_code == 400
    body = answer.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == "invalid_rut" and "emisor_rut" in body["error"]["fields"]
    shown = json.loads(reference_block("json", "Every error has one body:"))
    assert_shape(shown, body)


def test_lists_are_keyset_paginated_without_counts_and_refuse_bad_page_sizes(keys, account):
    from tests.gateways.factories import OrderFactory

    for _ in range(3):
        OrderFactory(account=account)
    first = api(keys["read"]).get("/api/v1/orders/?status=issued&page_size=2").json()
    assert set(first) == {"next", "previous", "results"} and len(first["results"]) == 2 and first["previous"] is None
    assert "cursor=" in first["next"] and "page_size=2" in first["next"] and "status=issued" in first["next"]
    assert first["results"][0]["id"] > first["results"][1]["id"]
    second = api(keys["read"]).get(first["next"]).json()
    assert len(second["results"]) == 1 and second["next"] is None and second["previous"]
    for query, field in (("page_size=0", "page_size"), ("page_size=501", "page_size"), ("cursor=nonsense", "cursor")):
        refused = api(keys["read"]).get(f"/api/v1/orders/?{query}")
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid"
        assert field in refused.json()["error"]["fields"]
    shown = json.loads(reference_block("json", "never a silent default."))
    assert_shape(shown, first)


def test_an_idempotency_key_replays_the_first_answer_and_refuses_another_request(keys, account):
    from gateways.models import WebhookEndpoint

    client = api(keys["write"], HTTP_IDEMPOTENCY_KEY="3f1c9a6e-erp-0001")
    first = client.post("/api/v1/webhook-endpoints/", ENDPOINT, format="json")
    again = client.post("/api/v1/webhook-endpoints/", ENDPOINT, format="json")
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert again["Idempotent-Replayed"] == "true" and not first.has_header("Idempotent-Replayed")
    assert WebhookEndpoint.objects.filter(account=account).count() == 1
    other = client.post("/api/v1/webhook-endpoints/", {**ENDPOINT, "description": "otro"}, format="json")
    assert (other.status_code, other.json()["error"]["code"]) == (422, "idempotency_key_reused")
    too_long = api(keys["write"], HTTP_IDEMPOTENCY_KEY="x" * 256).post("/api/v1/webhook-endpoints/", ENDPOINT, format="json")
    assert (too_long.status_code, too_long.json()["error"]["code"]) == (400, "invalid_idempotency_key")


def test_over_the_rate_limit_the_answer_is_429_with_retry_after(keys, monkeypatch):
    from django.core.cache import cache

    from billmysales.api.throttling import ClientRateThrottle

    cache.clear()
    monkeypatch.setattr(ClientRateThrottle, "THROTTLE_RATES", {"client": "2/min", "anon": "1/min"})
    client = api(keys["read"])
    assert [client.get("/api/v1/orders/").status_code for _ in range(2)] == [200, 200]
    throttled = client.get("/api/v1/orders/")
    assert (throttled.status_code, throttled.json()["error"]["code"]) == (429, "throttled")
    assert int(throttled["Retry-After"]) > 0
    # Calls without valid credentials are counted per IP.
    assert api("Bearer bms_nope_nope").get("/api/v1/orders/").status_code == 401
    assert api("Bearer bms_nope_nope").get("/api/v1/orders/").status_code == 429
    cache.clear()


def test_messages_follow_accept_language_and_codes_do_not(db):
    spanish = api().get("/api/v1/orders/")
    english = api(HTTP_ACCEPT_LANGUAGE="en").get("/api/v1/orders/")
    assert spanish["Content-Language"] == "es" and english["Content-Language"] == "en"
    assert spanish.json()["error"]["code"] == english.json()["error"]["code"] == "not_authenticated"
    assert english.json()["error"]["message"] == "Authentication credentials were not provided."
    assert spanish.json()["error"]["message"] != english.json()["error"]["message"]


def test_activating_without_a_test_sale_needs_a_reason_from_an_owner(keys, account):
    from tests.gateways.factories import GatewayFactory

    gateway = GatewayFactory(account=account, active=False)
    refused = api(keys["write"]).post(f"/api/v1/gateways/{gateway.pk}/activate/", {}, format="json")
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "test_sale_required")


def test_rotating_the_secret_answers_the_new_one_which_signs_from_then_on(keys, account):
    from gateways.models import WebhookEndpoint

    created = api(keys["write"]).post("/api/v1/webhook-endpoints/", ENDPOINT, format="json").json()
    rotated = api(keys["write"]).post(f"/api/v1/webhook-endpoints/{created['id']}/rotate-secret/").json()
    assert rotated["secret"] != created["secret"] and rotated["secret"].startswith("whsec_")
    assert WebhookEndpoint.objects.get(pk=created["id"]).secret == rotated["secret"]
    assert "secret" not in api(keys["read"]).get(f"/api/v1/webhook-endpoints/{created['id']}/").json()


@pytest.mark.django_db(transaction=True)
def test_a_test_sale_whose_emission_a_worker_claimed_first_reports_the_workers_document(account, actor, monkeypatch, settings):
    """The walk-through's test sale runs with workers: ingesting queues the emission for them too, and a
    worker may claim it before the request does. The answer is then the worker's document, not "Emitiendo"."""
    from django.db import connection

    from gateways import services
    from gateways.models import Emission, EmissionStatus
    from gateways.services import trial_sale
    from tests.gateways.factories import GatewayFactory

    settings.BMS_FAULT_PAUSES = {"after_claim": 0.5}
    real_run = trial_sale.emission_run

    def claimed_by_a_worker_first(*, emission_id):
        def worker():
            try:
                real_run(emission_id=emission_id)
            finally:
                connection.close()

        threading.Thread(target=worker).start()
        deadline = time.monotonic() + 10
        while Emission.objects.get(pk=emission_id).status != EmissionStatus.ISSUING:
            assert time.monotonic() < deadline, "the worker never claimed the emission"
            time.sleep(0.02)
        return real_run(emission_id=emission_id)  # claimed: nothing to do here

    monkeypatch.setattr(trial_sale, "emission_run", claimed_by_a_worker_first)
    gateway = GatewayFactory(account=account, active=False)

    report = services.gateway_test_sale(gateway=gateway, actor=actor)

    assert report.ok, report.as_dict()
    assert [step.name for step in report.steps][-2:] == ["Emisión", "Cuadre"]
    assert Document.objects.filter(order_id=report.order_id).count() == 1 and report.document_id


def test_the_shell_expands_like_bash_and_refuses_what_it_cannot_run():
    assert words("""curl -H "A: $X" '{"a": "$Y"}' x|tee""", {"X": "1"}) == ["curl", "-H", "A: 1", '{"a": "$Y"}', "x", "|", "tee"]
    assert expand('{"id": $ID, "u": "${U}/x"}', {"ID": "7", "U": "http://h"}) == '{"id": 7, "u": "http://h/x"}'
    assert jq_test({"results": [{"status": "issued"}]}, '.results[0].status == "issued"')
    assert not jq_test({"results": []}, '.results[0].status == "issued"')
    assert jq_test([1, 2], "length == 2") and not jq_test([1], "length == 2")
    shell = Shell({}, lambda secret: None)
    with pytest.raises(AssertionError, match="cannot run"):
        shell.run("rm -rf answer.json", None, None)
    with pytest.raises(AssertionError, match="no '# → <status>'"):
        shell.run('curl -sS "http://127.0.0.1:9/"', None, None)
    with pytest.raises(AssertionError, match="used before it is set"):
        shell.run('curl -sS "$NOWHERE/"', None, 200)
