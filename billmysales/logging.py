"""Log lines that say whose work they are about: account, gateway and order ids on every line.

One context per unit of work, kept in a ``contextvars.ContextVar``:

* web requests: ``LogContextMiddleware`` opens it (with a ``request_id``, taken from a proxy's
  ``X-Request-ID`` or made up, and sent back in the response) and closes it when the response leaves;
  the account is read from the request when the line is written — the API key's account, or the
  dashboard's ``request.account_context`` once the view has resolved it (logging never runs a query);
* Celery tasks: ``task_prerun`` / ``task_postrun`` (connected in ``billmysales.celery``) open and close
  it with the task's name and id and every ``*_id`` argument of the task's signature (``order_id``,
  ``gateway_id``, ``emission_id``, ``event_id`` …), so no task had to change;
* services: ``log_bind(account_id=…, gateway_id=…, order_id=…)`` adds ids to the current context until
  it closes (one line where a service has loaded its row), and ``with log_context(...)`` adds them for a
  block only. Outside a request or a task (a shell, a management command) ``log_bind`` lasts until the
  next one replaces the same ids.

``ContextFilter`` (on the handlers in ``settings.LOGGING``) copies the context onto each record;
``JsonFormatter`` writes one JSON object per line (production) and ``TextFormatter`` appends
``[account=… gateway=… order=…]`` to a readable line (the demo, local development, the tests).
``LOG_FORMAT`` (``json`` / ``text``) chooses.
"""
from __future__ import annotations

import inspect
import logging
import re
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

from django.utils.log import log_response
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _BaseJsonFormatter

EMPTY: Mapping[str, object] = MappingProxyType({})
_context: ContextVar[Mapping[str, object]] = ContextVar("bms_log_context", default=EMPTY)
_request: ContextVar[object | None] = ContextVar("bms_log_request", default=None)
# Order of the ids in text lines; others follow in the order they were bound.
TEXT_ORDER = ("account_id", "gateway_id", "order_id", "request_id", "task", "task_id")
SHORT_NAMES = {"account_id": "account", "gateway_id": "gateway", "order_id": "order"}
REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _clean(ids: Mapping[str, object]) -> dict[str, object]:
    return {key: value for key, value in ids.items() if value is not None and value != ""}


def current_context() -> dict[str, object]:
    """The ids bound now (a copy), including the request's account once it is known."""
    context = dict(_context.get())
    request = _request.get()
    if request is not None and "account_id" not in context:
        account_id = request_account_id(request)
        if account_id is not None:
            context["account_id"] = account_id
    return context


def log_bind(**ids: object) -> None:
    """Adds ids to the current request's or task's log context (None and "" are ignored)."""
    ids = _clean(ids)
    if ids:
        _context.set(MappingProxyType({**_context.get(), **ids}))


def log_context_clear() -> None:
    """Forgets every id bound in this thread or task (the end of a unit of work)."""
    _context.set(EMPTY)


@contextmanager
def log_context(**ids: object) -> Iterator[None]:
    """``with log_context(account_id=1, order_id=2):`` — the ids are on every line logged in the block."""
    token = _context.set(MappingProxyType({**_context.get(), **_clean(ids)}))
    try:
        yield
    finally:
        _context.reset(token)


def request_account_id(request) -> int | None:
    """The request's account without running a query: an API key's account, or the dashboard's
    account context if the view already resolved it (``request.account_context`` is lazy)."""
    api_key = getattr(request, "auth", None)
    account_id = getattr(api_key, "account_id", None)
    if account_id is not None:
        return account_id
    lazy = request.__dict__.get("account_context")
    wrapped = getattr(lazy, "_wrapped", lazy)  # a SimpleLazyObject not evaluated yet holds ``empty``
    account = getattr(wrapped, "account", None)
    return getattr(account, "pk", None)


# --- web requests -------------------------------------------------------------------------------


class LogContextMiddleware:
    """Opens one log context per request (``request_id``; the account is read from the request)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex[:16]
        token = _context.set(MappingProxyType({"request_id": request_id}))
        request_token = _request.set(request)
        try:
            response = self.get_response(request)
            if response.status_code >= 400:
                # What Django logs after the middleware returns (e.g. the API's 4xx), logged here with the ids.
                log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
        finally:
            _request.reset(request_token)
            _context.reset(token)
        response.headers.setdefault(REQUEST_ID_HEADER, request_id)
        return response


# --- Celery tasks -------------------------------------------------------------------------------

_id_params: dict[str, tuple[str, ...]] = {}


def _task_id_params(task) -> tuple[str, ...]:
    """Names of the ``*_id`` parameters of a task's ``run`` signature (cached per task name)."""
    names = _id_params.get(task.name)
    if names is None:
        try:
            parameters = inspect.signature(task.run).parameters
        except (TypeError, ValueError):
            parameters = {}
        names = _id_params[task.name] = tuple(name for name in parameters if name.endswith("_id"))
    return names


def task_context_open(sender=None, task_id=None, task=None, args=None, kwargs=None, **_):
    """``task_prerun``: a fresh context with the task's name, id and its ``*_id`` arguments."""
    task = task or sender
    ids: dict[str, object] = {"task": getattr(task, "name", None), "task_id": task_id}
    if task is not None:
        names = _task_id_params(task)
        ids.update(zip(names, args or (), strict=False))
        ids.update({name: value for name, value in (kwargs or {}).items() if name in names})
    _context.set(MappingProxyType(_clean(ids)))


def task_context_close(**_):
    """``task_postrun``: nothing of this task is left on the next one's lines."""
    log_context_clear()


# --- logging handlers and formatters ------------------------------------------------------------


class ContextFilter(logging.Filter):
    """Copies the current log context onto the record (``record.bms_context``); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "bms_context"):
            try:
                record.bms_context = current_context()
            except Exception:  # a log line must never fail because its context could not be read
                record.bms_context = {}
        return True


class JsonFormatter(_BaseJsonFormatter):
    """One JSON object per line: ``timestamp``, ``level``, ``logger``, ``message``, the context's ids,
    any ``extra=`` fields (e.g. ``status_code``), and ``exc_info`` when there is a traceback."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", True)
        # ``request`` (Django's request log lines) would only print its repr: the message names the path.
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, "bms_context", "request"])
        super().__init__(*args, **kwargs)

    def add_fields(self, log_data: dict, record: logging.LogRecord, message_dict: dict) -> None:
        super().add_fields(log_data, record, message_dict)
        for key, value in getattr(record, "bms_context", {}).items():
            log_data.setdefault(key, value)


class TextFormatter(logging.Formatter):
    """A readable line with the context's ids at the end: ``... [account=3 gateway=7 order=42]``."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = getattr(record, "bms_context", None)
        if not context:
            return line
        keys = [key for key in TEXT_ORDER if key in context] + [key for key in context if key not in TEXT_ORDER]
        ids = " ".join(f"{SHORT_NAMES.get(key, key)}={context[key]}" for key in keys)
        head, newline, rest = line.partition("\n")  # keep a traceback below the line, not after it
        return f"{head} [{ids}]{newline}{rest}"
