import hashlib
import secrets

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email, password=None, **extra):
        if not email:
            raise ValueError("A user needs an email address.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """Logs in with an email address. Staff users may open any account in support mode."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    # Created through the sign-up form: the address must be confirmed before the first sign-in. Users an
    # operator created (createsuperuser, the admin, the demo seed) are trusted as they are.
    signed_up = models.BooleanField(default=False)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    def __str__(self) -> str:
        return self.email


class Account(models.Model):
    """The tenant. Every tenant-owned row carries a foreign key to it."""

    name = models.CharField(max_length=200)
    rut = models.CharField(_("RUT empresa"), max_length=12, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", _("Dueño")
    ADMIN = "admin", _("Administrador")
    SUPPORT = "support", _("Soporte")
    VIEWER = "viewer", _("Solo lectura")


# Roles allowed to change things; viewers only read.
WRITE_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.SUPPORT})
# Roles allowed to manage members and API keys.
ADMIN_ROLES = frozenset({Role.OWNER, Role.ADMIN})


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the user last chose this account (switched to it, created it, joined it): after signing in
    # again they work in the account they used last.
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "account"], name="unique_membership")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.account} ({self.role})"


class ApiKeyScope(models.TextChoices):
    READ = "read", _("Lectura")
    WRITE = "write", _("Lectura y escritura")


API_KEY_PREFIX_LEN = 8


def hash_api_key(raw_key: str) -> str:
    # The key carries 256 bits of randomness, so a fast hash is enough (as with GitHub or Stripe tokens).
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


def generate_api_key() -> tuple[str, str]:
    """Returns (prefix, full key). The full key is shown once and never stored."""
    prefix = secrets.token_hex(API_KEY_PREFIX_LEN // 2)
    return prefix, f"bms_{prefix}_{secrets.token_urlsafe(32)}"


class ApiKey(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=API_KEY_PREFIX_LEN, unique=True)
    key_hash = models.CharField(max_length=64)
    scope = models.CharField(max_length=8, choices=ApiKeyScope.choices, default=ApiKeyScope.READ)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} (bms_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def allows_write(self) -> bool:
        return self.scope == ApiKeyScope.WRITE


class AuditLog(models.Model):
    """Who did what to which object, when, from which account. Written by services only."""

    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_logs")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    support_mode = models.BooleanField(default=False)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["account", "-created_at"])]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.object_type}:{self.object_id}"


class TenantModel(models.Model):
    """Base of every tenant-owned model: the account is a direct column, indexed first."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")

    class Meta:
        abstract = True


class IdempotentRequest(models.Model):
    """A POST sent with an ``Idempotency-Key``: its first response, replayed for the same key and body.

    Unique per account and key. ``request_hash`` covers the method, the path and the body, so the same
    key with a different request is refused (422) instead of answered with another request's result.
    """

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", _("En curso")
        DONE = "done", _("Terminada")

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "key"], name="unique_idempotency_key")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_expiry")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status})"


def hash_invitation_token(token: str) -> str:
    """Invitation tokens travel only in the email; the database keeps their SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


class Invitation(models.Model):
    """An invitation to join an account with a role, sent by email; the token is shown only in the email
    (stored hashed), expires, and is accepted once by whoever signs in with the invited address."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["account", "-created_at"], name="invitation_account")]

    def __str__(self) -> str:
        return f"{self.email} → {self.account} ({self.role})"

    @property
    def pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > timezone.now()
