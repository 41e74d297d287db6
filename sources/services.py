"""Writes of store connections: created and changed only here, checked against the adapter's specs,
credentials encrypted by the field and never echoed back, every change audited; tokens refreshed once
under a lease; connect flows started and finished."""
import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Account
from accounts.services import Actor, audit_log_record
from billmysales.integrations.errors import IntegrationError
from billmysales.integrations.http import url_problem
from billmysales.integrations.reports import CheckItem, ConnectionReport
from billmysales.integrations.spec import validate_connection_values

from .base import ConnectionTester
from .errors import SourceRejectedError, SourceTransientError
from .models import ConnectAttempt, SourceConnection
from .registry import SourceNotRegistered, source_adapter_class
from .signals import connection_status_changed

logger = logging.getLogger(__name__)


def _adapter_class(platform: str):
    try:
        return source_adapter_class(platform)
    except SourceNotRegistered as exc:
        raise ValidationError({"platform": [exc.message]}) from None


def _check_store_url(adapter, store_url: str) -> None:
    if not store_url:
        if adapter.store_url_required:
            raise ValidationError({"store_url": [_("Indique la URL de la tienda (https://…).")]})
        return
    problem = url_problem(store_url)
    if problem:
        raise ValidationError({"store_url": [_("La URL de la tienda no sirve: %(problem)s") % {"problem": problem}]})


@transaction.atomic
def source_connection_create(
    *, account: Account, actor: Actor, name: str, platform: str, store_url: str = "",
    credentials: dict | None = None, config: dict | None = None,
) -> SourceConnection:
    adapter = _adapter_class(platform)
    _check_store_url(adapter, store_url)
    credentials, config = validate_connection_values(adapter, credentials=credentials, config=config)
    connection = SourceConnection(
        account=account, name=name, platform=platform, store_url=store_url, credentials=credentials, config=config
    )
    connection.full_clean()
    connection.save()
    audit_log_record(account=account, actor=actor, action="sourceconnection.create", obj=connection)
    return connection


@transaction.atomic
def source_connection_update(*, connection: SourceConnection, actor: Actor, **changes) -> SourceConnection:
    """Changes the given fields; credentials sent are merged into the stored ones (sending a new token
    never erases the webhook secret), and the platform of a connection never changes."""
    if "platform" in changes and changes["platform"] != connection.platform:
        raise ValidationError({"platform": [_("El tipo de un origen de datos no se cambia; cree otro origen.")]})
    adapter = _adapter_class(connection.platform)
    if "store_url" in changes:
        _check_store_url(adapter, changes["store_url"])
    if "credentials" in changes or "config" in changes:
        changes["credentials"], changes["config"] = validate_connection_values(
            adapter, credentials=changes.get("credentials"), config=changes.get("config"), existing=connection
        )
    for field, value in changes.items():
        setattr(connection, field, value)
    connection.full_clean()
    connection.save()
    audit_log_record(
        account=connection.account, actor=actor, action="sourceconnection.update", obj=connection,
        data={"fields": sorted(changes)},
    )
    return connection


def connection_status_set(*, connection: SourceConnection, status: str, message: str = "") -> None:
    """Says on the connection what the merchant must know: it works, it needs attention (polling keeps
    failing, a webhook was disabled), it must be reconnected (a token that cannot be refreshed)."""
    changed = connection.status != status
    SourceConnection.objects.filter(pk=connection.pk).update(status=status, status_message=message[:300])
    connection.status, connection.status_message = status, message[:300]
    if status != SourceConnection.Status.ACTIVE:
        logger.warning("account=%s source=%s %s: %s", connection.account_id, connection.pk, status, message)
    if changed:
        connection_status_changed.send(sender=SourceConnection, connection=connection, status=status, message=message)


def credentials_refresh(
    *, connection: SourceConnection, needs_refresh: Callable[[dict], bool], refresh: Callable[[dict], dict],
    lease_seconds: int = 60, wait_seconds: float = 30.0,
) -> SourceConnection:
    """Refreshes a connection's expiring tokens once, however many workers need them at the same time.

    A worker takes a short lease on the connection row (a conditional UPDATE, so no transaction stays
    open across the vendor call); the others wait for the lease to end and then use the tokens the
    first one saved. ``refresh(credentials)`` calls the vendor and returns the credentials to merge
    (the new access token, the rotated refresh token, their expiries): they are saved in one write
    before the lease ends, so a rotated refresh token is never held only in memory. A refresh the
    vendor refuses (``SourceRejectedError``: the refresh token expired or was revoked) marks the
    connection "reconnect needed" with the reason. Returns the connection with fresh credentials.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        connection.refresh_from_db(fields=["credentials", "refresh_lease_until", "status"])
        if not needs_refresh(connection.credentials or {}):
            return connection
        now = timezone.now()
        taken = SourceConnection.objects.filter(pk=connection.pk).filter(
            Q(refresh_lease_until__isnull=True) | Q(refresh_lease_until__lt=now)
        ).update(refresh_lease_until=now + timedelta(seconds=lease_seconds))
        if taken:
            # Another worker may have saved fresh tokens between the read above and this lease: read them
            # again under the lease, or a rotated refresh token would be spent twice.
            connection.refresh_from_db(fields=["credentials", "refresh_lease_until", "status"])
            if not needs_refresh(connection.credentials or {}):
                SourceConnection.objects.filter(pk=connection.pk).update(refresh_lease_until=None)
                connection.refresh_lease_until = None
                return connection
            break
        if time.monotonic() > deadline:
            raise SourceTransientError(_("Otra tarea está renovando el acceso a la tienda; se reintentará."))
        time.sleep(0.2)
    try:
        fresh = refresh(dict(connection.credentials or {}))
    except SourceRejectedError as exc:
        SourceConnection.objects.filter(pk=connection.pk).update(refresh_lease_until=None)
        connection_status_set(
            connection=connection, status=SourceConnection.Status.RECONNECT,
            message=_("No se pudo renovar el acceso: %(reason)s Vuelva a conectar la tienda.") % {"reason": exc.message},
        )
        raise
    except Exception:
        SourceConnection.objects.filter(pk=connection.pk).update(refresh_lease_until=None)
        raise
    with transaction.atomic():
        locked = SourceConnection.objects.select_for_update().get(pk=connection.pk)
        locked.credentials = {**(locked.credentials or {}), **fresh}
        locked.refresh_lease_until = None
        if locked.status == SourceConnection.Status.RECONNECT:
            locked.status, locked.status_message = SourceConnection.Status.ACTIVE, ""
        locked.save(update_fields=["credentials", "refresh_lease_until", "status", "status_message"])
    connection.refresh_from_db()
    return connection


CONNECT_ATTEMPT_MINUTES = 30


def _session_hash(session_key: str | None) -> str:
    return hashlib.sha256((session_key or "").encode()).hexdigest() if session_key else ""


@transaction.atomic
def connect_attempt_start(
    *, account: Account, actor: Actor, platform: str, session_key: str | None, data: dict | None = None,
    connection: SourceConnection | None = None,
) -> ConnectAttempt:
    """Starts a connect flow; its ``state`` goes to the store and must come back to the same account
    and browser session within ``CONNECT_ATTEMPT_MINUTES``, once."""
    _adapter_class(platform)
    attempt = ConnectAttempt.objects.create(
        account=account, platform=platform, state=secrets.token_urlsafe(32), session_hash=_session_hash(session_key),
        created_by=actor.user, connection=connection, data=data or {},
        expires_at=timezone.now() + timedelta(minutes=CONNECT_ATTEMPT_MINUTES),
    )
    audit_log_record(account=account, actor=actor, action="sourceconnection.connect_start", obj=attempt, data={"platform": platform})
    return attempt


class ConnectRefused(ValueError):
    """A connect flow's return that must not be trusted; the message says why, in Spanish."""


@transaction.atomic
def connect_attempt_use(*, state: str, platform: str, session_key: str | None = None, check_session: bool = True) -> ConnectAttempt:
    """The attempt ``state`` names, marked used. Refused when unknown, for another platform, expired,
    already used (a replayed callback) or, when ``check_session``, started in another browser session."""
    attempt = ConnectAttempt.objects.select_for_update().filter(state=state or "", platform=platform).first()
    if attempt is None:
        raise ConnectRefused(_("La respuesta de la tienda no corresponde a una conexión iniciada aquí (state desconocido)."))
    if attempt.used_at is not None:
        raise ConnectRefused(_("Esta autorización ya se usó; inicie la conexión de nuevo."))
    if attempt.expires_at < timezone.now():
        raise ConnectRefused(_("La autorización expiró; inicie la conexión de nuevo."))
    if check_session and attempt.session_hash != _session_hash(session_key):
        raise ConnectRefused(_("La conexión se inició en otra sesión del navegador; iníciela de nuevo desde aquí."))
    attempt.used_at = timezone.now()
    attempt.save(update_fields=["used_at"])
    return attempt


def connect_attempt_fail(*, attempt: ConnectAttempt, error: str) -> None:
    ConnectAttempt.objects.filter(pk=attempt.pk).update(error=error[:2000])
    logger.warning("account=%s connect %s failed: %s", attempt.account_id, attempt.platform, error)


def connect_attempt_for_session(*, state: str, platform: str, session_key: str | None) -> ConnectAttempt:
    """The attempt ``state`` names, used or not, when this browser session started it: for flows whose store
    answers on another channel first (WooCommerce POSTs the keys to a callback, then sends the browser back)."""
    attempt = ConnectAttempt.objects.filter(state=state or "", platform=platform).first()
    if attempt is None or attempt.session_hash != _session_hash(session_key):
        raise ConnectRefused(_("La respuesta de la tienda no corresponde a una conexión iniciada en esta sesión."))
    return attempt


def connect_attempt_pending_state(*, platform: str, session_key: str | None) -> str:
    """The ``state`` of this browser session's latest unused, unexpired attempt for ``platform`` ("" when none),
    for a store that may return without ``state`` (Multivende does not document it): the session binds the return."""
    if not session_key:
        return ""
    attempt = ConnectAttempt.objects.filter(
        platform=platform, session_hash=_session_hash(session_key), used_at__isnull=True, expires_at__gt=timezone.now()
    ).order_by("-created_at", "-pk").first()
    return attempt.state if attempt else ""


def source_connection_test(*, connection: SourceConnection) -> ConnectionReport:
    """"Probar conexión": what the store's adapter can check, in words; a failure is an item, not an error."""
    try:
        adapter = source_adapter_class(connection.platform)(connection)
    except SourceNotRegistered as exc:
        return ConnectionReport((CheckItem(_("Origen de datos"), False, exc.message),))
    if not isinstance(adapter, ConnectionTester):
        return ConnectionReport((CheckItem(str(adapter.label), None, _("Este origen no tiene una prueba de conexión.")),))
    try:
        return adapter.test_connection()
    except IntegrationError as exc:
        return ConnectionReport((CheckItem(_("Conexión con la tienda"), False, exc.message),))


@transaction.atomic
def source_connection_delete(*, connection: SourceConnection, actor: Actor) -> None:
    """Deletes a store connection no gateway uses; one in use is refused, naming the gateways."""
    in_use = list(connection.gateways.values_list("name", flat=True))
    if in_use:
        raise ValidationError(
            _("El origen de datos se usa en: %(names)s. Elimine o cambie esas pasarelas primero.") % {"names": ", ".join(in_use)},
            code="in_use",
        )
    audit_log_record(account=connection.account, actor=actor, action="sourceconnection.delete", obj=connection,
                     data={"name": connection.name})
    connection.delete()
