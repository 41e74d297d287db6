"""Shopify's connect flow, served under ``/connect/shopify/`` (namespace ``connect-shopify``, see ``sources/urls.py``).

``install/`` is the App URL and ``callback/`` the allowed redirection URL declared for our app in
Shopify's Partner Dashboard (or its ``shopify.app.toml``)."""
from django.urls import path

from . import views

urlpatterns = [
    path("start/", views.start, name="start"),
    path("install/", views.install, name="install"),
    path("callback/", views.callback, name="callback"),
]
