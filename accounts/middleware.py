from django.utils.functional import SimpleLazyObject

from .models import Account, Membership

SESSION_ACCOUNT_KEY = "account_id"
SESSION_SUPPORT_KEY = "support_account_id"


class AccountContext:
    """The account a signed-in dashboard user is working in, with their role there."""

    def __init__(self, account: Account | None, role: str | None, support_mode: bool):
        self.account = account
        self.role = role
        self.support_mode = support_mode


def resolve_session_account(request) -> AccountContext:
    user = request.user
    if not user.is_authenticated:
        return AccountContext(None, None, False)
    wanted = request.session.get(SESSION_ACCOUNT_KEY)
    memberships = Membership.objects.select_related("account").filter(user=user)
    membership = memberships.filter(account_id=wanted).first() if wanted else None
    if membership is not None:
        return AccountContext(membership.account, membership.role, False)
    support_id = request.session.get(SESSION_SUPPORT_KEY)
    if user.is_staff and support_id and support_id == wanted:
        account = Account.objects.filter(pk=support_id).first()
        if account is not None:
            return AccountContext(account, "support", True)
    membership = memberships.order_by("account__name").first()
    if membership is not None:
        return AccountContext(membership.account, membership.role, False)
    return AccountContext(None, None, False)


class CurrentAccountMiddleware:
    """Puts ``request.account_context`` (lazy) on dashboard requests; API keys resolve theirs in DRF."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.account_context = SimpleLazyObject(lambda: resolve_session_account(request))
        return self.get_response(request)
