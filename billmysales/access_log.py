"""gunicorn's own lines in the product's log format: ``--logger-class billmysales.access_log.GunicornLogger``.

With ``LOG_FORMAT=json`` (production's default) an access line is one JSON object, like the
application's lines: method, path, status, bytes, duration, client address, user agent and the
``request_id`` the application sent back (``X-Request-ID``), which joins the line to the application's
lines about the same request (those carry the account, gateway and order ids). gunicorn's error log
(start, worker boots and timeouts) gets the same formatter, so a log collector reads one format from the
web container. With ``LOG_FORMAT=text`` both are gunicorn's usual lines.
"""
from __future__ import annotations

import os

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from gunicorn.glogging import Logger

from .logging import REQUEST_ID_HEADER, JsonFormatter


def _log_format() -> str:
    try:
        return settings.LOG_FORMAT
    except ImproperlyConfigured:  # the settings refuse to load (a missing variable): gunicorn still logs
        return os.environ.get("LOG_FORMAT", "text")


class GunicornLogger(Logger):
    def setup(self, cfg) -> None:
        super().setup(cfg)
        self.json_lines = _log_format() == "json"
        if self.json_lines:
            formatter = JsonFormatter("%(levelname)s %(name)s %(message)s")
            for log in (self.error_log, self.access_log):
                for handler in log.handlers:
                    handler.setFormatter(formatter)

    def access(self, resp, req, environ, request_time) -> None:
        if not self.json_lines:
            super().access(resp, req, environ, request_time)
            return
        if not self.access_log_enabled:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        response_headers = {name.lower(): value for name, value in resp.headers}
        method, path = environ.get("REQUEST_METHOD", "-"), environ.get("PATH_INFO", "-")
        fields = {
            "method": method, "path": path, "query": environ.get("QUERY_STRING", ""),
            "status_code": int(status) if str(status).isdigit() else status,
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 1),
            "remote_addr": environ.get("REMOTE_ADDR", "-"), "user_agent": environ.get("HTTP_USER_AGENT", ""),
            "request_id": response_headers.get(REQUEST_ID_HEADER.lower(), ""),
        }
        try:
            self.access_log.info("%s %s %s", method, path, status, extra=fields)
        except Exception:
            self.exception("access log line not written")
