"""Connecting a Multivende account with our Multivende application (OAuth2 authorization code), and the
authorization the connection shows.

1. Start: a signed-in user whose role may write presses "Conectar con Multivende" on the data-source step,
   for a new connection (its name) or an existing Multivende connection (to connect or reconnect it).
   An attempt binds the flow to the account and the browser session, for 30 minutes, once
   (``sources.services.connect_attempt_start``); its ``state`` goes in the authorize URL.
2. Multivende shows its consent screen (the merchant leaves every permission ON, names the connection and
   saves) and sends the browser to our callback with ``code``, or ``error=access_denied``.
3. Return: ``state`` is not documented by Multivende. When it comes back it must name an attempt of this
   session, unused and unexpired (a mismatch or a replayed callback is refused before any request);
   when it does not come back, this session's pending attempt is the one (``connect_attempt_pending_state``),
   so the session alone binds the return. The code is exchanged once; the token's merchant is read
   (``GET /api/d/info``, for its name); the connection is created, or updated when reconnecting (a
   reconnect must authorize the same merchant, and authorizing a merchant that another Multivende
   connection of the account already holds renews that one instead of creating a twin). Credentials
   (both tokens, their expiries, ``MerchantId``) are encrypted; ``config["authorization"]`` keeps what
   the dashboard shows: merchant, scopes, expiries and when it was authorized.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Account
from accounts.services import Actor
from billmysales.integrations.errors import IntegrationError

from ..models import SourceConnection
from ..services import (
    ConnectRefused,
    connect_attempt_fail,
    connect_attempt_pending_state,
    connect_attempt_start,
    connect_attempt_use,
    connection_status_set,
    source_connection_create,
    source_connection_update,
)
from .client import Grant, MultivendeClient, MultivendeOAuth

logger = logging.getLogger(__name__)

PLATFORM = "multivende"
CALLBACK_ROUTE = "connect-multivende:callback"


def redirect_uri() -> str:
    """Our callback address, as registered with the Multivende application."""
    return settings.BMS_PUBLIC_URL.rstrip("/") + reverse(CALLBACK_ROUTE)


def multivende_connect_start(
    *, account: Account, actor: Actor, session_key: str | None, name: str = "", connection: SourceConnection | None = None,
    next_url: str = "",
) -> str:
    """Starts the flow; returns Multivende's authorize URL for the browser. Raises ``ValidationError``
    (no name) or ``SourceRejectedError`` (our application is not configured on this server)."""
    if connection is not None and (connection.platform != PLATFORM or connection.account_id != account.pk):
        raise ValidationError({"connection": [_("Esa conexión no es de Multivende en esta cuenta.")]})
    name = (name or "").strip() or (connection.name if connection is not None else "")
    if not name:
        raise ValidationError({"name": [_("Indique un nombre para el origen de datos (p. ej. «Multivende Tienda Chile»).")]})
    if len(name) > 120:
        raise ValidationError({"name": [_("El nombre admite hasta 120 caracteres.")]})
    oauth = MultivendeOAuth.from_settings(redirect_uri=redirect_uri())
    attempt = connect_attempt_start(
        account=account, actor=actor, platform=PLATFORM, session_key=session_key, connection=connection,
        data={"name": name, "next": next_url},
    )
    return oauth.authorization_url(state=attempt.state)


@dataclass(frozen=True)
class ConnectOutcome:
    ok: bool
    message: str
    next_url: str = ""
    connection: SourceConnection | None = None


def multivende_connect_finish(
    *, account: Account, actor: Actor, session_key: str | None, callback_url: str, params,
) -> ConnectOutcome:
    """Multivende's return (``params`` = its query): the connection saved, or why not, in words."""
    state = params.get("state") or ""
    try:
        attempt = connect_attempt_use(
            state=state or connect_attempt_pending_state(platform=PLATFORM, session_key=session_key),
            platform=PLATFORM, session_key=session_key,
        )
    except ConnectRefused as exc:
        logger.warning("account=%s multivende connect return refused: %s", account.pk, exc)
        return ConnectOutcome(False, str(exc))
    next_url = attempt.data.get("next", "")
    if attempt.account_id != account.pk:
        return _failed(attempt, _("Esta conexión se inició en otra cuenta; cámbiese a esa cuenta e inténtelo de nuevo."), next_url)
    error = params.get("error")
    if error:
        reason = _("se rechazó el permiso") if error == "access_denied" else str(error)[:100]
        return _failed(attempt, _("Multivende no autorizó la conexión (%(reason)s); no se guardó nada.") % {"reason": reason}, next_url)
    try:
        code = MultivendeOAuth.callback_code(callback_url, state=state or None)
        grant = MultivendeOAuth.from_settings(redirect_uri=redirect_uri()).exchange_code(code)
    except IntegrationError as exc:
        return _failed(attempt, _("No se pudo conectar con Multivende: %(reason)s") % {"reason": exc.message}, next_url)
    merchant = _merchant_of(grant)
    try:
        connection = _connection_save(attempt=attempt, actor=actor, grant=grant, merchant=merchant)
    except (ConnectRefused, ValidationError) as exc:
        message = str(exc) if isinstance(exc, ConnectRefused) else " ".join(exc.messages)
        return _failed(attempt, message, next_url)
    shown = merchant.get("name") or grant.merchant_id
    return ConnectOutcome(
        True, _("Multivende conectado: cuenta %(merchant)s, origen «%(name)s».") % {"merchant": shown, "name": connection.name},
        next_url, connection,
    )


def _failed(attempt, message: str, next_url: str) -> ConnectOutcome:
    connect_attempt_fail(attempt=attempt, error=message)
    return ConnectOutcome(False, message, next_url)


def _merchant_of(grant: Grant) -> dict:
    """The authorized merchant's name and RUT, from ``GET /api/d/info`` with the new token; {} when it
    cannot be read (the connection works without it)."""
    probe = SourceConnection(platform=PLATFORM, credentials=grant.credentials())
    try:
        info = MultivendeClient(probe).info()
    except IntegrationError as exc:
        logger.warning("multivende merchant %s: /api/d/info failed: %s", grant.merchant_id, exc)
        return {}
    merchant = info.get("Merchant") if isinstance(info.get("Merchant"), dict) else {}
    return {"name": str(merchant.get("name") or ""), "tax_id": str(merchant.get("taxId") or "")}


def _authorization(grant: Grant, merchant: dict) -> dict:
    return {
        "merchant_id": grant.merchant_id, "merchant_name": merchant.get("name", ""), "merchant_tax_id": merchant.get("tax_id", ""),
        "scopes": grant.scopes, "access_expires_at": grant.expires_at.isoformat(),
        "refresh_expires_at": grant.refresh_expires_at.isoformat() if grant.refresh_expires_at else "",
        "authorized_at": timezone.now().isoformat(),
    }


@transaction.atomic
def _connection_save(*, attempt, actor: Actor, grant: Grant, merchant: dict) -> SourceConnection:
    connection = attempt.connection
    if connection is None:
        connection = SourceConnection.objects.filter(
            account_id=attempt.account_id, platform=PLATFORM, config__authorization__merchant_id=grant.merchant_id
        ).order_by("pk").first()
    values = {"credentials": grant.credentials(), "store_url": settings.BMS_MULTIVENDE_BASE_URL.rstrip("/")}
    if connection is None:
        connection = source_connection_create(account=attempt.account, actor=actor, name=attempt.data["name"], platform=PLATFORM, **values)
    else:
        connection = SourceConnection.objects.select_for_update().get(pk=connection.pk, account_id=attempt.account_id)
        held = (connection.credentials or {}).get("merchant_id")
        if held and held != grant.merchant_id:
            raise ConnectRefused(_(
                "Se autorizó la cuenta %(new)s de Multivende, pero «%(name)s» es de la cuenta %(held)s; nada cambió. "
                "Para otra cuenta de Multivende cree otro origen de datos."
            ) % {"new": merchant.get("name") or grant.merchant_id, "name": connection.name, "held": held})
        connection = source_connection_update(connection=connection, actor=actor, **values)
        connection_status_set(connection=connection, status=SourceConnection.Status.ACTIVE, message="")
    _authorization_write(connection, _authorization(grant, merchant))
    return connection


def multivende_authorization_renewed(*, connection: SourceConnection, grant: Grant) -> None:
    """After a token renewal: the new expiries (and scopes, when Multivende says them) on the connection."""
    values = {"access_expires_at": grant.expires_at.isoformat(),
              "refresh_expires_at": grant.refresh_expires_at.isoformat() if grant.refresh_expires_at else ""}
    if grant.scopes:
        values["scopes"] = grant.scopes
    _authorization_write(connection, values)


def _authorization_write(connection: SourceConnection, values: dict) -> None:
    with transaction.atomic():
        locked = SourceConnection.objects.select_for_update().get(pk=connection.pk)
        config = dict(locked.config or {})
        config["authorization"] = {**(config.get("authorization") or {}), **values}
        locked.config = config
        locked.save(update_fields=["config"])
    connection.config = config
