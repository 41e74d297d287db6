"""Home: each gateway's state with what needs attention and the link that fixes it, and the account's last
30 days in three charts drawn on the server (documents per day by type, amount billed per day, why
orders did not become documents)."""
from urllib.parse import urlencode

from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.views.generic import TemplateView

from accounts.scoping import AccountScopedViewMixin, may_write
from billers.dte.types import DOCUMENT_TYPES

from .. import selectors
from ..labels import FAILURE_LABELS
from ..models import OrderStatus
from . import charts

CHART_DAYS = 30


def _orders_url(**params) -> str:
    return f"{reverse('order-list')}?{urlencode(params)}"


def _reconnect_url(gateway) -> str:
    source = gateway.source
    try:
        return f"{reverse(f'connect-{source.platform}:start')}?{urlencode({'connection': source.pk})}"
    except NoReverseMatch:
        return reverse("gateway-detail", args=[gateway.pk])


def issue_link(gateway, issue) -> tuple[str, str]:
    """(url, what the link says) for one of a gateway's issues."""
    if issue.code == "reconnect":
        return _reconnect_url(gateway), _("Reconectar la tienda")
    if issue.code == "no_folios":
        return _orders_url(status=OrderStatus.FAILED, gateway=gateway.pk), _("Cargue folios en su facturador y reintente")
    if issue.code == "failed":
        return _orders_url(status=OrderStatus.FAILED, gateway=gateway.pk), _("Ver y reintentar")
    if issue.code == "held":
        return _orders_url(status=OrderStatus.HELD, gateway=gateway.pk), _("Revisar")
    return f"{reverse('order-list')}#no-leidos", _("Volver a leer")


def failure_link(key: str) -> str:
    """Where the orders of one failure reason are listed."""
    if key == "unread":
        return f"{reverse('order-list')}#no-leidos"
    return _orders_url(status=OrderStatus.FAILED if key in ("no_folios", "biller_rejected") else OrderStatus.HELD)


class DashboardView(AccountScopedViewMixin, TemplateView):
    template_name = "gateways/dashboard.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        health = selectors.gateway_health_list(account=self.account)
        daily = selectors.documents_per_day(account=self.account, days=CHART_DAYS)
        failures = selectors.failures_by_reason(account=self.account, days=CHART_DAYS)
        context.update(
            gateways=[
                {"health": item, "issues": [(issue, *issue_link(item.gateway, issue)) for issue in item.issues]}
                for item in health
            ],
            documents_chart=charts.stacked_by_day(
                daily.days, daily.counts, css=lambda code: f"bms-bar-t{code}",
                label=lambda code: _(DOCUMENT_TYPES[code].short_name) if code in DOCUMENT_TYPES else str(code),
            ),
            amount_chart=charts.stacked_by_day(
                daily.days, {"invoiced": daily.invoiced}, css=lambda _key: "bms-bar-amount", label=lambda _key: _("facturado"), money=True,
            ),
            credited_total=sum(daily.credited), invoiced_total=sum(daily.invoiced),
            documents_total=sum(sum(values) for values in daily.counts.values()),
            documents_rows=[
                (day, counts) for n, day in enumerate(daily.days) if any(counts := [values[n] for values in daily.counts.values()])
            ],
            amount_rows=[row for row in zip(daily.days, daily.invoiced, daily.credited, strict=True) if row[1] or row[2]],
            failures_chart=charts.horizontal([(str(FAILURE_LABELS[key]), count) for key, count in failures]),
            failures=[(FAILURE_LABELS[key], count, failure_link(key)) for key, count in failures],
            chart_days=CHART_DAYS,
            orders=selectors.order_rows(selectors.order_filtered(account=self.account)).order_by("-id")[:10],
            may_write=may_write(self.request),
        )
        return context
