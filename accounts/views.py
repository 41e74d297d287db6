from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .middleware import SESSION_ACCOUNT_KEY, SESSION_SUPPORT_KEY
from .models import Account
from .selectors import account_search, membership_get
from .services import support_access_open


@login_required
@require_POST
def account_switch(request, account_id: int):
    if membership_get(user=request.user, account_id=account_id) is None:
        raise Http404("Not found")
    request.session[SESSION_ACCOUNT_KEY] = account_id
    request.session.pop(SESSION_SUPPORT_KEY, None)
    return redirect("dashboard")


@staff_member_required
def support_search(request):
    """Staff find any account by name or RUT to open it in support mode."""
    query = request.GET.get("q", "")
    return render(request, "accounts/support.html", {"accounts": account_search(query=query), "query": query})


@staff_member_required
@require_POST
def support_open(request, account_id: int):
    """Staff open any account in support mode; the access is audit-logged."""
    account = Account.objects.filter(pk=account_id).first()
    if account is None:
        raise Http404("Not found")
    support_access_open(staff_user=request.user, account=account, reason=request.POST.get("reason", ""))
    request.session[SESSION_ACCOUNT_KEY] = account.pk
    request.session[SESSION_SUPPORT_KEY] = account.pk
    return redirect("dashboard")
