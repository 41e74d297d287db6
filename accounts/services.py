import secrets
from dataclasses import dataclass
from datetime import timedelta

from cl_sii.rut import Rut
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import (
    Account,
    ApiKey,
    ApiKeyScope,
    AuditLog,
    Invitation,
    Membership,
    Role,
    User,
    generate_api_key,
    hash_api_key,
    hash_invitation_token,
)


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


def _canonical_rut(value: str) -> str:
    """The company RUT as stored ("76086428-5"), or a field error in Spanish."""
    try:
        return Rut(value, validate_dv=True).canonical
    except (ValueError, TypeError):
        raise ValidationError(
            {"rut": [ValidationError(_("'%(rut)s' no es un RUT válido.") % {"rut": value}, code="invalid_rut")]}
        ) from None


@transaction.atomic
def account_create(*, name: str, owner: User, rut: str = "", actor: Actor | None = None) -> Account:
    """A new account with ``owner`` as its owner; it becomes the account the owner works in."""
    account = Account(name=name.strip(), rut=_canonical_rut(rut) if rut.strip() else "")
    account.full_clean()
    account.save()
    Membership.objects.create(user=owner, account=account, role=Role.OWNER, last_used_at=timezone.now())
    audit_log_record(account=account, actor=actor or Actor(user=owner), action="account.create", obj=account)
    return account


def membership_mark_used(*, membership: Membership) -> Membership:
    """Remembers that the user chose this account now, so it is the one they get after signing in again."""
    membership.last_used_at = timezone.now()
    Membership.objects.filter(pk=membership.pk).update(last_used_at=membership.last_used_at)
    return membership



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


def support_access_open(*, staff_user: User, account: Account, reason: str) -> None:
    """A staff user opens an account they are not a member of, saying why (a ticket, a call); every such
    access is audit-logged with its reason, and there is none without one."""
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": [ValidationError(_("Indique el motivo del acceso (por ejemplo, el número de ticket)."),
                                                          code="required")]})
    audit_log_record(
        account=account,
        actor=Actor(user=staff_user, support_mode=True),
        action="support.open",
        obj=account,
        data={"reason": reason},
    )


INVITATION_DAYS = 7


@transaction.atomic
def account_update(*, account: Account, actor: Actor, **changes) -> Account:
    allowed = {"name", "rut"}
    for field, value in changes.items():
        if field not in allowed:
            raise ValidationError(_("Campo que no se puede cambiar: %(field)s.") % {"field": field})
        setattr(account, field, value)
    if "rut" in changes and changes["rut"]:
        account.rut = _canonical_rut(changes["rut"])
    account.full_clean()
    account.save()
    audit_log_record(account=account, actor=actor, action="account.update", obj=account, data={"fields": sorted(changes)})
    return account


@transaction.atomic
def invitation_create(*, account: Account, email: str, role: str, actor: Actor, accept_url: str) -> Invitation:
    """Invites ``email`` with ``role``; the email carries the link (``accept_url`` with the token)."""
    email = email.strip().lower()
    if role not in Role.values:
        raise ValidationError({"role": [_("Rol desconocido.")]})
    if role == Role.OWNER and actor.role != Role.OWNER:
        raise ValidationError({"role": [_("Solo un dueño puede invitar a otro dueño.")]})
    if Membership.objects.filter(account=account, user__email=email).exists():
        message = _("%(email)s ya es miembro de la cuenta.") % {"email": email}
        raise ValidationError({"email": [ValidationError(message, code="already_member")]})
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        account=account, email=email, role=role, token_hash=hash_invitation_token(token),
        invited_by=actor.user, expires_at=timezone.now() + timedelta(days=INVITATION_DAYS),
    )
    link = accept_url.replace("{token}", token)
    transaction.on_commit(lambda: send_mail(
        subject=_("Invitación a %(account)s en BillMySales") % {"account": account.name},
        message=_("Le invitaron a la cuenta %(account)s con el rol %(role)s.\n\nPara aceptar, abra este enlace "
                  "(vence en %(days)s días):\n%(link)s\n") % {
            "account": account.name, "role": invitation.get_role_display(), "days": INVITATION_DAYS, "link": link},
        from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=[email], fail_silently=True,
    ))
    audit_log_record(account=account, actor=actor, action="invitation.create", obj=invitation, data={"email": email, "role": role})
    return invitation


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: Actor) -> Invitation:
    if invitation.revoked_at is None and invitation.accepted_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        audit_log_record(account=invitation.account, actor=actor, action="invitation.revoke", obj=invitation)
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> Membership:
    """The invited user joins; the invitation must be pending and for the user's own email address."""
    invitation = Invitation.objects.select_for_update().filter(token_hash=hash_invitation_token(token)).first()
    if invitation is None or not invitation.pending:
        raise ValidationError(_("La invitación no existe, ya se usó o venció."))
    if invitation.email != user.email.lower():
        raise ValidationError(_("La invitación es para %(email)s; ingrese con esa cuenta.") % {"email": invitation.email})
    membership, _created = Membership.objects.get_or_create(user=user, account=invitation.account, defaults={"role": invitation.role})
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    audit_log_record(account=invitation.account, actor=Actor(user=user), action="invitation.accept", obj=invitation)
    return membership


def _check_owner_left(account: Account, leaving: Membership) -> None:
    if leaving.role == Role.OWNER and not Membership.objects.filter(account=account, role=Role.OWNER).exclude(pk=leaving.pk).exists():
        raise ValidationError(_("La cuenta debe conservar al menos un dueño."), code="last_owner")


@transaction.atomic
def membership_role_change(*, membership: Membership, role: str, actor: Actor) -> Membership:
    if role not in Role.values:
        raise ValidationError({"role": [_("Rol desconocido.")]})
    if Role.OWNER in (role, membership.role) and actor.role != Role.OWNER:
        raise ValidationError(_("Solo un dueño puede dar o quitar el rol de dueño."), code="permission_denied")
    if role != Role.OWNER:
        _check_owner_left(membership.account, membership)
    membership.role = role
    membership.save(update_fields=["role"])
    audit_log_record(account=membership.account, actor=actor, action="membership.role", obj=membership, data={"role": role})
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, actor: Actor) -> None:
    if membership.role == Role.OWNER and actor.role != Role.OWNER:
        raise ValidationError(_("Solo un dueño puede quitar a otro dueño."), code="permission_denied")
    _check_owner_left(membership.account, membership)
    audit_log_record(account=membership.account, actor=actor, action="membership.remove", obj=membership,
                     data={"email": membership.user.email})
    membership.delete()
