"""A tiny HTTP receiver for what a simulator pushes (webhooks, OAuth callbacks), on loopback in a thread."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


class Receiver:
    """Records every request and answers ``status`` (settable per path prefix through ``statuses``)."""

    def __init__(self, status: int = 200):
        self.status = status
        self.statuses: dict[str, int] = {}
        self.received: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):
                pass

            def _handle(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append(Received(self.command, self.path,
                                                  {k.lower(): v for k, v in self.headers.items()}, body))
                status = next((s for prefix, s in receiver.statuses.items() if self.path.startswith(prefix)),
                              receiver.status)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def on(self, path_prefix: str) -> list[Received]:
        return [r for r in self.received if r.path.startswith(path_prefix)]
