from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from .models import Account, ApiKey, ApiKeyScope, AuditLog, Membership, Role, User, generate_api_key, hash_api_key


@dataclass(frozen=True)
class Actor:
    """Who is acting: a user (maybe staff in support mode) or an API key, within one account."""

    user: User | None = None
    api_key: ApiKey | None = None
    support_mode: bool = False
    # The role in the account it acts in ("owner", "admin", "support", "viewer"; "read"/"write" for keys).
    role: str = ""

    @classmethod
    def system(cls) -> "Actor":
        return cls()


def audit_log_record(
    *, account: Account | None, actor: Actor, action: str, obj=None, data: dict | None = None
) -> AuditLog:
    return AuditLog.objects.create(
        account=account,
        actor=actor.user,
        api_key=actor.api_key,
        action=action,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        support_mode=actor.support_mode,
        data=data or {},
    )


@transaction.atomic
def account_create(*, name: str, owner: User, rut: str = "", actor: Actor | None = None) -> Account:
    account = Account.objects.create(name=name, rut=rut)
    Membership.objects.create(user=owner, account=account, role=Role.OWNER)
    audit_log_record(account=account, actor=actor or Actor(user=owner), action="account.create", obj=account)
    return account



@transaction.atomic
def api_key_create(*, account: Account, name: str, scope: str, actor: Actor) -> tuple[ApiKey, str]:
    """Creates a key and returns it with its plaintext, which is shown once and never stored."""
    if scope not in ApiKeyScope.values:
        raise ValueError(f"Unknown API key scope {scope!r}; use one of {', '.join(ApiKeyScope.values)}.")
    prefix, raw_key = generate_api_key()
    api_key = ApiKey.objects.create(
        account=account, name=name, prefix=prefix, key_hash=hash_api_key(raw_key), scope=scope, created_by=actor.user
    )
    audit_log_record(account=account, actor=actor, action="api_key.create", obj=api_key, data={"scope": scope})
    return api_key, raw_key


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: Actor) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        audit_log_record(account=api_key.account, actor=actor, action="api_key.revoke", obj=api_key)
    return api_key


def api_key_touch(*, api_key: ApiKey) -> None:
    """Records the last use, at most once a minute per key so busy keys cost no write per request."""
    now = timezone.now()
    if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now


def support_access_open(*, staff_user: User, account: Account, reason: str = "") -> None:
    """A staff user opens an account they are not a member of; every such access is audit-logged."""
    audit_log_record(
        account=account,
        actor=Actor(user=staff_user, support_mode=True),
        action="support.open",
        obj=account,
        data={"reason": reason},
    )
