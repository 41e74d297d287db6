"""An account's outgoing webhook endpoints: created with a secret shown once, checked against SSRF,
changed, rotated, deleted. Deliveries themselves are in ``gateways.outbox``."""
import secrets

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import Account
from accounts.services import Actor, audit_log_record

from ..models import WebhookEndpoint
from ..outbox import webhook_url_problem


def _check_url(url: str) -> None:
    problem = webhook_url_problem(url)
    if problem:
        raise ValidationError({"url": [ValidationError(_("No se pueden enviar webhooks a esa dirección: %(p)s") % {"p": problem},
                                                       code="url_not_allowed")]})


def _new_secret() -> str:
    return "whsec_" + secrets.token_hex(24)


@transaction.atomic
def webhook_endpoint_create(*, account: Account, actor: Actor, url: str, events: list[str], description: str = "",
                            active: bool = True) -> WebhookEndpoint:
    _check_url(url)
    endpoint = WebhookEndpoint.objects.create(
        account=account, url=url, events=sorted(set(events)), description=description, active=active, secret=_new_secret()
    )
    audit_log_record(account=account, actor=actor, action="webhook_endpoint.create", obj=endpoint, data={"url": url})
    return endpoint


@transaction.atomic
def webhook_endpoint_update(*, endpoint: WebhookEndpoint, actor: Actor, **changes) -> WebhookEndpoint:
    if "url" in changes:
        _check_url(changes["url"])
    if "events" in changes:
        changes["events"] = sorted(set(changes["events"]))
    if changes.get("active") and not endpoint.active:
        # Turned back on: a fresh start for the failure count.
        changes.update(disabled_reason="", consecutive_failures=0, failing_since=None)
    for field, value in changes.items():
        setattr(endpoint, field, value)
    endpoint.save()
    audit_log_record(account=endpoint.account, actor=actor, action="webhook_endpoint.update", obj=endpoint,
                     data={"fields": sorted(changes)})
    return endpoint


@transaction.atomic
def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint, actor: Actor) -> WebhookEndpoint:
    endpoint.secret = _new_secret()
    endpoint.save(update_fields=["secret", "updated_at"])
    audit_log_record(account=endpoint.account, actor=actor, action="webhook_endpoint.rotate_secret", obj=endpoint)
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, actor: Actor) -> None:
    audit_log_record(account=endpoint.account, actor=actor, action="webhook_endpoint.delete", obj=endpoint,
                     data={"url": endpoint.url})
    endpoint.delete()
