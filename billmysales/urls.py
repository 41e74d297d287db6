from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from accounts import views as account_views
from accounts.api.views import AccountApi, ApiKeyViewSet, InvitationViewSet, MemberViewSet
from billers.api.views import BillerConnectionViewSet, BillerTypeApi
from gateways import views as gateway_views
from gateways.api.views import (
    BackfillJobViewSet,
    DocumentViewSet,
    GatewayViewSet,
    OrderViewSet,
    UnreadDeliveryViewSet,
    WebhookDeliveryViewSet,
    WebhookEndpointViewSet,
)
from gateways.webhooks import inbound_webhook
from sources.api.views import SourceConnectionViewSet, SourceTypeApi

# No format-suffix routes (``/gateways/1/activate.json``): JSON is the only format, and the suffix
# reached action methods as an unexpected argument.
router = DefaultRouter()
router.include_format_suffixes = False
router.register("api-keys", ApiKeyViewSet, basename="api-key")
router.register("sources", SourceConnectionViewSet, basename="source")
router.register("billers", BillerConnectionViewSet, basename="biller")
router.register("gateways", GatewayViewSet, basename="gateway")
router.register("orders", OrderViewSet, basename="order")
router.register("documents", DocumentViewSet, basename="document")
router.register("backfills", BackfillJobViewSet, basename="backfill")
router.register("unread-deliveries", UnreadDeliveryViewSet, basename="unread-delivery")
router.register("webhook-endpoints", WebhookEndpointViewSet, basename="webhook-endpoint")
router.register("webhook-deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")
router.register("members", MemberViewSet, basename="member")
router.register("invitations", InvitationViewSet, basename="invitation")

urlpatterns = [
    path("", gateway_views.DashboardView.as_view(), name="dashboard"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/<int:account_id>/switch/", account_views.account_switch, name="account-switch"),
    path("support/", account_views.support_search, name="support-search"),
    path("support/<int:account_id>/open/", account_views.support_open, name="support-open"),
    path("orders/", gateway_views.OrderListView.as_view(), name="order-list"),
    path("orders/<int:pk>/", gateway_views.OrderDetailView.as_view(), name="order-detail"),
    path("gateways/<int:pk>/", gateway_views.GatewayDetailView.as_view(), name="gateway-detail"),
    path("gateways/<int:pk>/rules/", gateway_views.GatewayRulesView.as_view(), name="gateway-rules"),
    path("documents/<int:pk>/xml/", gateway_views.DocumentFileView.as_view(extension="xml"), name="document-xml"),
    path("documents/<int:pk>/pdf/", gateway_views.DocumentFileView.as_view(extension="pdf"), name="document-pdf"),
    path("hooks/<str:token>/", inbound_webhook, name="inbound-webhook"),
    path("shopify/compliance/", include("gateways.shopify_compliance")),
    path("", include("sources.urls")),
    path("documentos/<str:token>.pdf", gateway_views.public_document_pdf, name="document-public-pdf"),
    path("api/v1/account/", AccountApi.as_view(), name="api-account"),
    path("api/v1/source-types/", SourceTypeApi.as_view(), name="api-source-types"),
    path("api/v1/biller-types/", BillerTypeApi.as_view(), name="api-biller-types"),
    path("api/v1/", include((router.urls, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("admin/", admin.site.urls),
]

handler404 = "billmysales.views.not_found"
handler500 = "billmysales.views.server_error"
