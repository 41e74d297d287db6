"""``Idempotency-Key`` on POSTs: the first response is stored and replayed, nothing is created twice.

The key's row is created (committed) before the view runs, so concurrent replays find it: they wait for
the first request to finish and answer its response. A request whose process died mid-way leaves its
row "in progress"; the key then answers 409 (the outcome is unknown: check the resource) and is never
run again, because running it again could create a second object. Rows are kept
``BMS_IDEMPOTENCY_DAYS`` days.
"""
import hashlib
import json
import time
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billmysales.api.errors import ApiError

from .models import Account, IdempotentRequest

HEADER = "Idempotency-Key"
WAIT_SECONDS = 10.0
ABANDONED_AFTER = timedelta(seconds=120)


class Replay(Exception):
    def __init__(self, row: IdempotentRequest):
        super().__init__(row.key)
        self.row = row


def request_hash(method: str, path: str, body: bytes) -> str:
    try:
        canonical = json.dumps(json.loads(body or b"null"), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


def idempotent_request_begin(*, account: Account, key: str, method: str, path: str, body: bytes) -> IdempotentRequest:
    """The new row for this key, or raises ``Replay`` with the finished first request, or ``ApiError``."""
    if not key or len(key) > 255 or not key.isprintable():
        raise ApiError("invalid_idempotency_key", _("Idempotency-Key debe ser un texto imprimible de hasta 255 caracteres."))
    digest = request_hash(method, path, body)
    try:
        with transaction.atomic():
            return IdempotentRequest.objects.create(account=account, key=key, request_hash=digest)
    except IntegrityError:
        pass
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        row = IdempotentRequest.objects.get(account=account, key=key)
        if row.request_hash != digest:
            raise ApiError(
                "idempotency_key_reused",
                _("Esta Idempotency-Key ya se usó con otra solicitud; use una clave nueva para una solicitud distinta."),
                status=422,
            )
        if row.status == IdempotentRequest.Status.DONE:
            raise Replay(row)
        if time.monotonic() > deadline or timezone.now() - row.created_at > ABANDONED_AFTER:
            raise ApiError(
                "idempotency_in_progress",
                _("La solicitud con esta Idempotency-Key sigue en curso o se interrumpió; revise el recurso antes de "
                  "reintentar con otra clave."),
                status=409,
            )
        time.sleep(0.1)


def idempotent_request_finish(*, row: IdempotentRequest, status: int, body) -> None:
    if status >= 500:
        # Nothing was done, or nobody knows: let the key be tried again rather than replay an error.
        IdempotentRequest.objects.filter(pk=row.pk).delete()
        return
    IdempotentRequest.objects.filter(pk=row.pk).update(
        status=IdempotentRequest.Status.DONE, response_status=status, response_body=body, completed_at=timezone.now()
    )


def idempotent_requests_expire() -> int:
    cutoff = timezone.now() - timedelta(days=settings.BMS_IDEMPOTENCY_DAYS)
    deleted, _by_model = IdempotentRequest.objects.filter(created_at__lt=cutoff).delete()
    return deleted
