"""Dashboard routes of the gateways app."""
from django.urls import path

from .views import documents, gateway, home, orders, webhooks

urlpatterns = [
    path("", home.DashboardView.as_view(), name="dashboard"),
    path("orders/", orders.OrderListView.as_view(), name="order-list"),
    path("orders/<int:pk>/", orders.OrderDetailView.as_view(), name="order-detail"),
    path("gateways/<int:pk>/", gateway.GatewayDetailView.as_view(), name="gateway-detail"),
    path("gateways/<int:pk>/rules/", gateway.GatewayRulesView.as_view(), name="gateway-rules"),
    path("documents/<int:pk>/xml/", documents.DocumentFileView.as_view(extension="xml"), name="document-xml"),
    path("documents/<int:pk>/pdf/", documents.DocumentFileView.as_view(extension="pdf"), name="document-pdf"),
    path("documentos/<str:token>.pdf", documents.public_document_pdf, name="document-public-pdf"),
]
    path("configuracion/webhooks/", webhooks.WebhookEndpointListView.as_view(), name="settings-webhooks"),
    path("configuracion/webhooks/<int:pk>/", webhooks.WebhookEndpointDetailView.as_view(), name="settings-webhook-detail"),
    path("configuracion/webhooks/<int:pk>/probar/", webhooks.WebhookEndpointTestView.as_view(), name="settings-webhook-test"),
    path("configuracion/webhooks/<int:pk>/secreto/", webhooks.WebhookEndpointRotateView.as_view(), name="settings-webhook-rotate"),
    path("configuracion/webhooks/<int:pk>/eliminar/", webhooks.WebhookEndpointDeleteView.as_view(), name="settings-webhook-delete"),
    path("configuracion/webhooks/entregas/<int:pk>/reenviar/", webhooks.WebhookDeliveryResendView.as_view(),
         name="settings-webhook-resend"),
