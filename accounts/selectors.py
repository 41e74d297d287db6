from django.db.models import Q
from django.utils.crypto import constant_time_compare

from .models import Account, ApiKey, Invitation, Membership, User, hash_api_key, hash_invitation_token


def membership_get(*, user: User, account_id: int) -> Membership | None:
    return Membership.objects.select_related("account").filter(user=user, account_id=account_id).first()


def invitation_from_token(*, token: str) -> Invitation | None:
    """The invitation an emailed link carries (pending or not), or None."""
    return Invitation.objects.select_related("account", "invited_by").filter(token_hash=hash_invitation_token(token)).first()



def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key matching ``raw_key``, or None. Looked up by prefix, compared in constant time."""
    parts = raw_key.split("_")
    if len(parts) < 3 or parts[0] != "bms":
        return None
    api_key = ApiKey.objects.select_related("account").filter(prefix=parts[1], revoked_at__isnull=True).first()
    if api_key is None or not constant_time_compare(api_key.key_hash, hash_api_key(raw_key)):
        return None
    return api_key



def account_search(*, query: str, limit: int = 20) -> list[Account]:
    """For staff in support mode only: accounts by name or RUT, across tenants."""
    qs = Account.objects.order_by("name")
    if query.strip():
        qs = qs.filter(Q(name__icontains=query.strip()) | Q(rut__icontains=query.strip()))
    return list(qs[:limit])
