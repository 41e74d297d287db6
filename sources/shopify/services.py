"""Finishing a Shopify install: the code exchanged for tokens, the connection created or reconnected.

The connection is written through ``sources.services`` (checked against the adapter's specs, credentials
encrypted, audited). One shop is one connection per account: installing again (a reconnect after the
refresh token expired, a reinstall after the app was removed) updates the connection that already
names the shop, and puts it back to "active".
"""
from django.utils.translation import gettext as _

from accounts.services import Actor

from ..models import ConnectAttempt, SourceConnection
from ..services import connection_status_set, source_connection_create, source_connection_update
from .client import ShopifyOAuthClient, token_credentials
from .oauth import InstallRefused


def shopify_install_complete(*, attempt: ConnectAttempt, shop: str, code: str) -> SourceConnection:
    """Exchanges ``code`` for an expiring offline token and saves it on the shop's connection.
    Raises ``InstallRefused`` (another shop than the connection's) or the client's errors."""
    store_url = f"https://{shop}"
    connection = attempt.connection or SourceConnection.objects.filter(
        account_id=attempt.account_id, platform="shopify", store_url=store_url
    ).first()
    if connection is not None and connection.store_url and connection.store_url.rstrip("/") != store_url:
        raise InstallRefused(
            _("La conexión «%(name)s» es de %(url)s; la app se autorizó en %(shop)s. Inicie la conexión desde esa tienda.")
            % {"name": connection.name, "url": connection.store_url, "shop": shop}
        )
    credentials = token_credentials(ShopifyOAuthClient(shop=shop).exchange_code(code))
    actor = Actor(user=attempt.created_by)
    if connection is None:
        return source_connection_create(
            account=attempt.account, actor=actor, name=attempt.data.get("name") or shop, platform="shopify",
            store_url=store_url, credentials=credentials,
        )
    connection = source_connection_update(connection=connection, actor=actor, store_url=store_url, credentials=credentials)
    connection_status_set(connection=connection, status=SourceConnection.Status.ACTIVE)
    return connection
