"""WooCommerce's connect flow, served under ``/connect/woocommerce/`` (namespace ``connect-woocommerce``)."""
from django.urls import path

from . import views

urlpatterns = [
    path("", views.ConnectStartView.as_view(), name="start"),
    path("callback/", views.keys_callback, name="callback"),
    path("return/", views.ConnectReturnView.as_view(), name="return"),
]
