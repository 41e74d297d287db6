"""Orders: the list and one order's page with its actions."""
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.views.generic import DetailView, TemplateView

from accounts.scoping import AccountScopedViewMixin, may_write

from .. import selectors, services
from ..models import OrderStatus
from .common import request_actor


class OrderListView(AccountScopedViewMixin, TemplateView):
    template_name = "gateways/order_list.html"
    page_size = 50

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        status = self.request.GET.get("status") or None
        before = self.request.GET.get("before")
        orders = selectors.order_list(
            account=self.account, status=status, before_id=int(before) if before and before.isdigit() else None,
            limit=self.page_size + 1,
        )
        context.update(
            orders=orders[: self.page_size],
            next_before=orders[self.page_size - 1].pk if len(orders) > self.page_size else None,
            status=status or "",
            statuses=OrderStatus.choices,
        )
        return context


class OrderDetailView(AccountScopedViewMixin, DetailView):
    template_name = "gateways/order_detail.html"
    context_object_name = "order"

    def scoped_queryset(self):
        return selectors.order_detail_queryset()

    def post(self, request, pk):
        order = self.get_object()
        if not may_write(request):
            messages.error(request, "Su rol solo permite ver.")
            return redirect("order-detail", pk=order.pk)
        action = request.POST.get("action")
        try:
            if action == "emit":
                order = services.order_emit_now(order=order, actor=request_actor(request))
                if order.status == OrderStatus.READY:
                    messages.success(request, "Orden enviada a emisión.")
                else:
                    messages.error(request, f"No se emitió ({order.get_status_display()}): {order.status_reason}")
            elif action == "retry":
                services.order_retry(order=order, actor=request_actor(request))
                messages.success(request, "Reintento en cola.")
            elif action == "skip":
                services.order_skip(order=order, reason=request.POST.get("reason", ""), actor=request_actor(request))
                messages.success(request, "Orden omitida.")
            else:
                messages.error(request, "Acción desconocida.")
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect("order-detail", pk=order.pk)


