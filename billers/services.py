"""Writes of biller connections: created and changed only here, checked against the adapter's specs,
credentials encrypted by the field and never echoed back, every change audited."""
from cl_sii.rut import Rut
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError
from django.utils.translation import gettext as _

from accounts.models import Account
from accounts.services import Actor, audit_log_record
from billmysales.integrations.errors import IntegrationError
from billmysales.integrations.reports import CheckItem, ConnectionReport
from billmysales.integrations.spec import validate_connection_values

from .models import BillerConnection
from .registry import BillerNotRegistered, biller_adapter_class


def _adapter_class(provider: str):
    try:
        return biller_adapter_class(provider)
    except BillerNotRegistered as exc:
        raise ValidationError({"provider": [exc.message]}) from None


def canonical_rut(value: str, field: str = "emisor_rut") -> str:
    try:
        return Rut(value, validate_dv=True).canonical
    except (ValueError, TypeError):
        raise ValidationError(
            {field: [ValidationError(_("'%(rut)s' no es un RUT válido (dígito verificador o formato).") % {"rut": value},
                                     code="invalid_rut")]}
        ) from None


@transaction.atomic
def biller_connection_create(
    *, account: Account, actor: Actor, name: str, provider: str, emisor_rut: str,
    credentials: dict | None = None, config: dict | None = None, **fields,
) -> BillerConnection:
    adapter = _adapter_class(provider)
    credentials, config = validate_connection_values(adapter, credentials=credentials, config=config)
    connection = BillerConnection(
        account=account, name=name, provider=provider, emisor_rut=canonical_rut(emisor_rut),
        credentials=credentials, config=config, **fields,
    )
    connection.full_clean()
    connection.save()
    audit_log_record(account=account, actor=actor, action="billerconnection.create", obj=connection)
    return connection


@transaction.atomic
def biller_connection_update(*, connection: BillerConnection, actor: Actor, **changes) -> BillerConnection:
    """Changes the given fields; credentials sent are merged into the stored ones, and the provider of a
    connection never changes (its documents were issued there)."""
    if "provider" in changes and changes["provider"] != connection.provider:
        raise ValidationError({"provider": [_("El facturador de una conexión no se cambia; cree otra conexión.")]})
    adapter = _adapter_class(connection.provider)
    if "emisor_rut" in changes:
        changes["emisor_rut"] = canonical_rut(changes["emisor_rut"])
    if "credentials" in changes or "config" in changes:
        changes["credentials"], changes["config"] = validate_connection_values(
            adapter, credentials=changes.get("credentials"), config=changes.get("config"), existing=connection
        )
    for field, value in changes.items():
        setattr(connection, field, value)
    connection.full_clean()
    connection.save()
    audit_log_record(
        account=connection.account, actor=actor, action="billerconnection.update", obj=connection,
        data={"fields": sorted(changes)},
    )
    return connection


def biller_connection_test(*, connection: BillerConnection) -> ConnectionReport:
    """"Probar conexión": what the biller's adapter can check, in words; a failure is an item, not an error."""
    try:
        return biller_adapter_class(connection.provider)(connection).test_connection()
    except BillerNotRegistered as exc:
        return ConnectionReport((CheckItem(_("Facturador"), False, exc.message),))
    except IntegrationError as exc:
        return ConnectionReport((CheckItem(_("Conexión con el facturador"), False, exc.message),))


@transaction.atomic
def biller_connection_delete(*, connection: BillerConnection, actor: Actor) -> None:
    """Deletes a biller connection no gateway uses and that never issued a document (documents keep
    their biller); otherwise refused with the reason."""
    in_use = list(connection.gateways.values_list("name", flat=True))
    if in_use:
        raise ValidationError(
            _("El facturador se usa en: %(names)s. Elimine o cambie esas pasarelas primero.") % {"names": ", ".join(in_use)},
            code="in_use",
        )
    audit_log_record(account=connection.account, actor=actor, action="billerconnection.delete", obj=connection,
                     data={"name": connection.name})
    try:
        with transaction.atomic():
            connection.delete()
    except ProtectedError:
        raise ValidationError(
            _("El facturador emitió documentos que deben conservarse con él: no se puede eliminar."), code="in_use"
        ) from None
