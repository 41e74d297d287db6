from django.db.models import F
from django.shortcuts import redirect
from django.utils.functional import SimpleLazyObject, cached_property

from .models import Account, Membership, Role
from .scoping import AccountScopedViewMixin

SESSION_ACCOUNT_KEY = "account_id"
SESSION_SUPPORT_KEY = "support_account_id"


class AccountContext:
    """The account a signed-in dashboard user is working in, with their role there."""

    def __init__(self, account: Account | None, role: str | None, support_mode: bool, user=None):
        self.account = account
        self.role = role
        self.support_mode = support_mode
        self._user = user

    @property
    def role_label(self) -> str:
        return str(dict(Role.choices).get(self.role, self.role or ""))

    @cached_property
    def memberships(self) -> list[Membership]:
        """Every account the user belongs to, for the account menu (by name)."""
        if self._user is None:
            return []
        return list(Membership.objects.select_related("account").filter(user=self._user).order_by("account__name", "pk"))


def resolve_session_account(request) -> AccountContext:
    """The account chosen in this session; else, right after signing in, the one the user chose last
    (``Membership.last_used_at``, set by ``accounts.services.membership_mark_used``), then by name."""
    user = request.user
    if not user.is_authenticated:
        return AccountContext(None, None, False)
    wanted = request.session.get(SESSION_ACCOUNT_KEY)
    memberships = Membership.objects.select_related("account").filter(user=user)
    membership = memberships.filter(account_id=wanted).first() if wanted else None
    if membership is not None:
        return AccountContext(membership.account, membership.role, False, user)
    support_id = request.session.get(SESSION_SUPPORT_KEY)
    if user.is_staff and support_id and support_id == wanted:
        account = Account.objects.filter(pk=support_id).first()
        if account is not None:
            return AccountContext(account, "support", True, user)
    membership = memberships.order_by(F("last_used_at").desc(nulls_last=True), "account__name", "pk").first()
    if membership is not None:
        return AccountContext(membership.account, membership.role, False, user)
    return AccountContext(None, None, False, user)


class CurrentAccountMiddleware:
    """Puts ``request.account_context`` (lazy) on dashboard requests; API keys resolve theirs in DRF.

    Someone signed in who belongs to no account yet (just signed up) and opens an account's page is sent
    to create their first account; staff without accounts go to the support search instead (the view).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.account_context = SimpleLazyObject(lambda: resolve_session_account(request))
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        view_class = getattr(view_func, "view_class", None)
        if (
            view_class is not None and issubclass(view_class, AccountScopedViewMixin)
            and request.user.is_authenticated and not request.user.is_staff
            and request.account_context.account is None
        ):
            return redirect("account-create")
        return None
