"""Home: the account's gateways and latest orders."""
from django.views.generic import TemplateView

from accounts.scoping import AccountScopedViewMixin

from .. import selectors


class DashboardView(AccountScopedViewMixin, TemplateView):
    template_name = "gateways/dashboard.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["gateways"] = selectors.gateway_list(account=self.account)
        context["orders"] = selectors.order_list(account=self.account, limit=20)
        context["memberships"] = self.request.user.memberships.select_related("account").order_by("account__name")
        return context


