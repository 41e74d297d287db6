"""Dashboard routes of the gateways app."""
from django.urls import path

from .views import documents, gateway, home, orders, webhooks, wizard

urlpatterns = [
    path("", home.DashboardView.as_view(), name="dashboard"),
    path("orders/", orders.OrderListView.as_view(), name="order-list"),
    path("orders/<int:pk>/", orders.OrderDetailView.as_view(), name="order-detail"),
    path("gateways/", gateway.GatewayListView.as_view(), name="gateway-list"),
    path("gateways/<int:pk>/", gateway.GatewayDetailView.as_view(), name="gateway-detail"),
    path("gateways/<int:pk>/source/", gateway.GatewaySourceView.as_view(), name="gateway-source"),
    path("gateways/<int:pk>/biller/", gateway.GatewayBillerView.as_view(), name="gateway-biller"),
    path("gateways/<int:pk>/rules/", gateway.GatewayRulesView.as_view(), name="gateway-rules"),
    path("gateways/<int:pk>/rules/preview/", gateway.GatewayRulesPreviewView.as_view(), name="gateway-rules-preview"),
    path("gateways/<int:pk>/delete/", gateway.GatewayDeleteView.as_view(), name="gateway-delete"),
    # The setup wizard ("Nueva pasarela"): before the gateway exists, then under the gateway.
    path("setup/", wizard.SetupStartView.as_view(), name="setup-start"),
    path("setup/account/", wizard.SetupAccountView.as_view(), name="setup-account"),
    path("setup/source/", wizard.SetupSourceView.as_view(), name="setup-source"),
    path("setup/biller/", wizard.SetupBillerView.as_view(), name="setup-biller"),
    path("gateways/<int:pk>/setup/", wizard.SetupResumeView.as_view(), name="setup-resume"),
    path("gateways/<int:pk>/setup/source/", wizard.SetupGatewaySourceView.as_view(), name="setup-gateway-source"),
    path("gateways/<int:pk>/setup/biller/", wizard.SetupGatewayBillerView.as_view(), name="setup-gateway-biller"),
    path("gateways/<int:pk>/setup/rules/", wizard.SetupRulesView.as_view(), name="setup-rules"),
    path("gateways/<int:pk>/setup/test/", wizard.SetupTestView.as_view(), name="setup-test"),
    path("gateways/<int:pk>/setup/test/live/", wizard.SetupTestLiveView.as_view(), name="setup-test-live"),
    path("gateways/<int:pk>/setup/activate/", wizard.SetupActivateView.as_view(), name="setup-activate"),
    path("documents/<int:pk>/xml/", documents.DocumentFileView.as_view(extension="xml"), name="document-xml"),
    path("documents/<int:pk>/pdf/", documents.DocumentFileView.as_view(extension="pdf"), name="document-pdf"),
    path("documentos/<str:token>.pdf", documents.public_document_pdf, name="document-public-pdf"),
    path("configuracion/webhooks/", webhooks.WebhookEndpointListView.as_view(), name="settings-webhooks"),
    path("configuracion/webhooks/<int:pk>/", webhooks.WebhookEndpointDetailView.as_view(), name="settings-webhook-detail"),
    path("configuracion/webhooks/<int:pk>/probar/", webhooks.WebhookEndpointTestView.as_view(), name="settings-webhook-test"),
    path("configuracion/webhooks/<int:pk>/secreto/", webhooks.WebhookEndpointRotateView.as_view(), name="settings-webhook-rotate"),
    path("configuracion/webhooks/<int:pk>/eliminar/", webhooks.WebhookEndpointDeleteView.as_view(), name="settings-webhook-delete"),
    path("configuracion/webhooks/entregas/<int:pk>/reenviar/", webhooks.WebhookDeliveryResendView.as_view(),
         name="settings-webhook-resend"),
]
