from django.apps import AppConfig


class GatewaysConfig(AppConfig):
    name = "gateways"

    def ready(self):
        # Sources cannot import the pipeline; they announce status changes and the pipeline reports them.
        from sources.models import SourceConnection
        from sources.signals import connection_status_changed

        from . import events
        from .services.webhooks_setup import source_webhooks_reensure

        def report(sender, connection, status, message, **kwargs):
            if status == SourceConnection.Status.ACTIVE:
                # Reconnected (or fixed): subscriptions the store dropped meanwhile are made again.
                source_webhooks_reensure(connection=connection)
                return
            events.connection_needs_attention(
                account_id=connection.account_id, connection_id=connection.pk, platform=connection.platform,
                status=status, message=message,
            )

        connection_status_changed.connect(report, sender=SourceConnection, weak=False, dispatch_uid="gateways.connection_events")
