"""Writes of store connections: created and changed only here, checked against the adapter's specs,
credentials encrypted by the field and never echoed back, every change audited."""
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import Account
from accounts.services import Actor, audit_log_record
from billmysales.integrations.http import url_problem
from billmysales.integrations.spec import validate_connection_values

from .models import SourceConnection
from .registry import SourceNotRegistered, source_adapter_class


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
