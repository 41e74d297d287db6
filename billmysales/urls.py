import base64
import hashlib
import re

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.template.loader import get_template
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from accounts.api.views import AccountApi, ApiKeyViewSet, InvitationViewSet, MemberViewSet
from billers.api.views import BillerConnectionViewSet, BillerTypeApi
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


def _inline_style_hashes(template_name: str) -> list[str]:
    """CSP hashes of the literal <style> blocks of a package's template (computed from the installed copy)."""
    source = get_template(template_name).template.source
    return [f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
            for body in re.findall(r"<style>(.*?)</style>", source, re.S)]


SWAGGER_CSP = {"style-src": _inline_style_hashes("drf_spectacular/swagger_ui.html")}
# Redoc's styled-components insert <style> elements and its search runs in a blob: worker. Its template's
# Google Fonts stay blocked (no CDN at run time): the page falls back to the system fonts.
REDOC_CSP = {"style-src": [UNSAFE_INLINE], "worker-src": ["blob:"]}

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
    path("", include("accounts.urls")),
    path("auth/", include("allauth.urls")),
    path("", include("gateways.urls")),
    path("hooks/<str:token>/", inbound_webhook, name="inbound-webhook"),
    path("shopify/compliance/", include("gateways.shopify_compliance")),
    path("", include("sources.urls")),
    path("", include("billers.urls")),
    path("api/v1/account/", AccountApi.as_view(), name="api-account"),
    path("api/v1/source-types/", SourceTypeApi.as_view(), name="api-source-types"),
    path("api/v1/biller-types/", BillerTypeApi.as_view(), name="api-biller-types"),
    path("api/v1/", include((router.urls, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI loads its start-up script from ?script (no inline script, so the site-wide CSP holds) and
    # its one inline <style> is allowed by hash; Redoc injects its styles at run time: allowed for it only.
    path("api/docs/", csp_update(SWAGGER_CSP)(SpectacularSwaggerSplitView.as_view(url_name="api-schema")), name="api-docs"),
    path("api/redoc/", csp_update(REDOC_CSP)(SpectacularRedocView.as_view(url_name="api-schema")), name="api-redoc"),
    path("admin/", admin.site.urls),
    # The language switcher's POST (Django's set_language): the choice is kept in the language cookie.
    path("i18n/", include("django.conf.urls.i18n")),
]

handler403 = "billmysales.views.permission_denied"
handler404 = "billmysales.views.not_found"
handler500 = "billmysales.views.server_error"
